package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/stack"
)

// What a sample stands for: a sample of a keyspace larger than asked is a
// part of it, with the keyspace counted by DBSIZE; a sample with filters
// scales what passed them; All reads every key.
func TestTopologySample(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	for i := range 1000 {
		prefix := "a"
		if i%2 == 1 {
			prefix = "b"
		}
		must(t, src.Client.Set(ctx, fmt.Sprintf("%s:%d", prefix, i), "v", 0).Err())
	}
	topo := &Topology{Conn: redisconn.Conn{Addr: src.Addr}, Seed: src.Client}
	sample := func(opts SampleOptions) (SampleResult, int) {
		t.Helper()
		opts.Reader, opts.ScanCount = ReaderOptions{Name: "t"}, 100
		var read int
		res, err := topo.Sample(ctx, opts, func(s *Sample) {
			read += len(s.Batch.Events)
			if len(s.Memory) != len(s.Batch.Events) {
				t.Errorf("%d keys read, %d memory sizes", len(s.Batch.Events), len(s.Memory))
			}
		})
		must(t, err)
		return res, read
	}
	if res, read := sample(SampleOptions{All: true}); !res.Whole || res.Keys != 1000 || read != 1000 {
		t.Errorf("all: %+v, %d read", res, read)
	}
	if res, read := sample(SampleOptions{Keys: 5000}); !res.Whole || res.Keys != 1000 || read != 1000 {
		t.Errorf("a sample larger than the keyspace: %+v, %d read", res, read)
	}
	if res, read := sample(SampleOptions{Keys: 200}); res.Whole || res.Keys != 1000 || read < 100 || read > 300 {
		t.Errorf("a sample of 200: %+v, %d read", res, read)
	}
	res, read := sample(SampleOptions{Keys: 500, Filter: pipeline.KeyFilter{Include: []string{"a:*"}}})
	if res.Whole || res.Keys != int64(read*2) || read < 150 || read > 350 {
		t.Errorf("a filtered sample of half the keyspace: %+v, %d read (want the keys scaled by 2)", res, read)
	}
}

// reconcile reads the source in the pipeline's current epoch, so that a
// repair made of its reads is stamped in it (docs/DESIGN.md, "Reconcile's
// repairs"); DBSIZE sizes the sample.
func TestTopologyCompareReadsInTheSavedEpoch(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	for i := range 10 {
		must(t, src.Client.Set(ctx, fmt.Sprintf("k:%d", i), "v", 0).Err())
	}
	ck := checkpoint.NewMemoryStore()
	must(t, saveState(ctx, ck, "p", State{Epoch: 7}))
	topo := &Topology{Conn: redisconn.Conn{Addr: src.Addr}, Seed: src.Client}
	scan, size, closeNodes, err := topo.Compare(ctx, ck, CompareOptions{ScanCount: 100, Reader: ReaderOptions{Name: "p"}})
	must(t, err)
	defer closeNodes()
	if size != 10 {
		t.Errorf("size %d, want DBSIZE 10", size)
	}
	var read int
	for done := false; !done; {
		var b pipeline.Batch
		b, done, err = scan.Next(ctx)
		must(t, err)
		for _, e := range b.Events {
			read++
			if e.Version.Epoch() != 7 {
				t.Fatalf("%s read in epoch %d, want the saved 7", e.Key, e.Version.Epoch())
			}
		}
	}
	if read != 10 {
		t.Errorf("read %d keys, want 10", read)
	}
}

// plan's read check: an empty database passes, a key read as the
// snapshot reads it passes, a user refused the read's commands fails with
// the ACL to give.
func TestNodeProbeRead(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	node := &Node{Conn: redisconn.Conn{Addr: src.Addr}, Client: src.Client}
	if empty, err := node.ProbeRead(ctx, ReaderOptions{Name: "t"}); !empty || err != nil {
		t.Fatalf("empty database: %v, %v", empty, err)
	}
	must(t, src.Client.HSet(ctx, "h", "f", "v").Err())
	if empty, err := node.ProbeRead(ctx, ReaderOptions{Name: "t"}); empty || err != nil {
		t.Fatalf("a readable key: %v, %v", empty, err)
	}
	must(t, src.Client.Do(ctx, "ACL", "SETUSER", "noread", "on", ">pw", "~*", "+@all", "-hgetall", "-hscan").Err())
	user := redisconn.Conn{Addr: src.Addr, Username: "noread", Password: "pw"}
	cl, err := redisconn.Connect(ctx, user)
	must(t, err)
	defer cl.Close()
	_, err = (&Node{Conn: user, Client: cl}).ProbeRead(ctx, ReaderOptions{Name: "t"})
	if err == nil || !strings.Contains(err.Error(), "docs/redis.md") {
		t.Fatalf("a user refused HGETALL: %v", err)
	}
}

// plan's source checks: a server that answers, its notifications, one
// key read; a user refused the read stops the checks there, and the
// source cannot be sampled.
func TestTopologyPreflight(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	must(t, src.Client.HSet(ctx, "h", "f", "v").Err())
	steps := func(conn redisconn.Conn, cl *goredis.Client) ([]string, bool) {
		t.Helper()
		checks, readable := (&Topology{Conn: conn, Seed: cl}).Preflight(ctx, ReaderOptions{Name: "t"})
		var out []string
		for _, c := range checks {
			if c.Err != nil {
				out = append(out, "fail "+c.Name+": "+c.Err.Error())
			} else {
				out = append(out, "ok "+c.Name+": "+c.Detail)
			}
		}
		return out, readable
	}
	got, readable := steps(redisconn.Conn{Addr: src.Addr}, src.Client)
	want := []string{
		"ok source redis: " + src.Addr + " db 0 reachable (1 node(s))",
		"ok keyspace notifications " + src.Addr + ": notify-keyspace-events is \"\"; replicate will add",
		"ok source read " + src.Addr + ": a key read as the snapshot reads it",
	}
	if !readable || len(got) != len(want) {
		t.Fatalf("readable %v, steps %q", readable, got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("step %d = %q, want it to start with %q", i, got[i], want[i])
		}
	}
	must(t, src.Client.Do(ctx, "ACL", "SETUSER", "noread", "on", ">pw", "~*", "+@all", "-hgetall", "-hscan").Err())
	user := redisconn.Conn{Addr: src.Addr, Username: "noread", Password: "pw"}
	cl, err := redisconn.Connect(ctx, user)
	must(t, err)
	defer cl.Close()
	got, readable = steps(user, cl)
	if last := got[len(got)-1]; readable || !strings.HasPrefix(last, "fail source read "+src.Addr) || !strings.Contains(last, "docs/redis.md") {
		t.Errorf("a user refused HGETALL: readable %v, steps %q", readable, got)
	}
}
