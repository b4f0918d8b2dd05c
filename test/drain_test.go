package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// ackedWrites is what a writer has done to a set of keys: every write
// carries a sequence number unique across the writer, as the key's value,
// so "this write or a later one" is a comparison of numbers.
type ackedWrites struct {
	seq atomic.Int64

	mu sync.Mutex
	// acked is the last write of each key the store acknowledged.
	acked map[string]ackedWrite
	// deletes are the sequence numbers of every delete sent, acknowledged
	// or not: a delete in flight may already have been applied.
	deletes map[string][]int64
}

type ackedWrite struct {
	seq     int64
	deleted bool
}

func newAckedWrites() *ackedWrites {
	return &ackedWrites{acked: map[string]ackedWrite{}, deletes: map[string][]int64{}}
}

// begin takes the next sequence number for a write of key.
func (a *ackedWrites) begin(key string, del bool) int64 {
	seq := a.seq.Add(1)
	if del {
		a.mu.Lock()
		a.deletes[key] = append(a.deletes[key], seq)
		a.mu.Unlock()
	}
	return seq
}

// ack records that the store acknowledged write seq of key.
func (a *ackedWrites) ack(key string, seq int64, del bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur, ok := a.acked[key]; !ok || cur.seq < seq {
		a.acked[key] = ackedWrite{seq: seq, deleted: del}
	}
}

// snapshot copies the acknowledged writes now.
func (a *ackedWrites) snapshot() map[string]ackedWrite {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]ackedWrite, len(a.acked))
	for k, v := range a.acked {
		out[k] = v
	}
	return out
}

// deletedSince reports whether a delete of key at or after seq was sent.
func (a *ackedWrites) deletedSince(key string, seq int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, d := range a.deletes[key] {
		if d >= seq {
			return true
		}
	}
	return false
}

// check fails t unless the target holds, for every write acknowledged
// before the drain, that write or a later one: read(key) returns the
// sequence number the target holds, or ok false when the key is absent.
func (a *ackedWrites) check(t *testing.T, before map[string]ackedWrite, read func(key string) (seq int64, ok bool)) {
	t.Helper()
	bad := 0
	for key, w := range before {
		got, ok := read(key)
		switch {
		case ok && got >= w.seq:
		case !ok && (w.deleted || a.deletedSince(key, w.seq)):
		case ok:
			t.Errorf("key %s holds write %d in the target, older than write %d acknowledged before the drain", key, got, w.seq)
			bad++
		default:
			t.Errorf("key %s is missing in the target, but write %d was acknowledged before the drain (and not deleted since)", key, w.seq)
			bad++
		}
		if bad >= 10 {
			t.Fatalf("stopping after %d keys behind", bad)
		}
	}
}

// pacedWriters runs write from workers goroutines, g being the
// goroutine and n its own count of writes, at perSecond writes a second
// in all (in bursts of up to burst), until the returned function is
// called; that function returns once every goroutine has stopped.
func pacedWriters(workers int, perSecond float64, burst int, write func(ctx context.Context, g, n int)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	limit := rate.NewLimiter(rate.Limit(perSecond), burst)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				if limit.Wait(ctx) != nil {
					return
				}
				write(ctx, g, n)
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// writeRedisAcked sets keys k0…k(keys-1) of cl to sequence numbers and
// deletes a tenth of the time, from several connections, until the
// returned function is called.
func writeRedisAcked(t *testing.T, cl goredis.UniversalClient, keys int, perSecond float64) (*ackedWrites, func()) {
	t.Helper()
	a := newAckedWrites()
	stop := pacedWriters(4, perSecond, 10, func(ctx context.Context, g, n int) {
		i := g + 7*n
		key := fmt.Sprintf("d:%d", i%keys)
		// Every seventh write a delete, of keys that are also set:
		// by i, with keys a multiple of 10, the same keys would
		// always be deleted and never set.
		del := n%7 == 3
		seq := a.begin(key, del)
		var err error
		if del {
			err = cl.Del(ctx, key).Err()
		} else {
			err = cl.Set(ctx, key, seq, 0).Err()
		}
		if err == nil {
			a.ack(key, seq, del)
		}
	})
	return a, stop
}

// drainOnce records the writes acknowledged so far, runs `cutover drain`,
// and once it exits 0 checks at once — while the writer goes on — that
// the target holds each of them or a later write.
func drainOnce(t *testing.T, a *ackedWrites, p pipelineArgs, read func(key string) (int64, bool)) {
	t.Helper()
	before := a.snapshot()
	if len(before) == 0 {
		t.Fatal("the writer has not written anything yet")
	}
	res := stack.Run(testCtx(t, 3*time.Minute), t, append([]string{"drain", "--timeout", "2m"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("drain exited %d:\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if !strings.Contains(res.Stdout, "drained in") {
		t.Errorf("drain's report does not say how long it took:\n%s", res.Stdout)
	}
	a.check(t, before, read)
	t.Logf("%s", strings.TrimSpace(res.Stdout))
}

// slowSource puts a proxy that delays everything the source store sends
// by latency between the pipeline's source and the store at addr: the
// value of flag (--redis-addr, or --source-endpoint with an http://
// prefix) is pointed at the proxy.
func slowSource(t *testing.T, p pipelineArgs, flag, addr string, latency time.Duration) {
	t.Helper()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(server, "source", "127.0.0.1:0", strings.TrimPrefix(addr, "http://"))
	must(t, server.Collection.Add(proxy, true))
	t.Cleanup(proxy.Stop)
	_, err := proxy.Toxics.AddToxicJson(strings.NewReader(fmt.Sprintf(
		`{"name":"slow","type":"latency","stream":"downstream","attributes":{"latency":%d}}`, latency.Milliseconds())))
	must(t, err)
	for i, a := range p.args {
		if a == flag {
			p.args[i+1] = strings.TrimSuffix(addr, strings.TrimPrefix(addr, "http://")) + proxy.Listen
		}
	}
}

// seqReader reads the sequence number a target holds for a key with get
// (goredis.Nil: the key is absent).
func seqReader(t *testing.T, get func(ctx context.Context, key string) (string, error)) func(key string) (int64, bool) {
	return func(key string) (int64, bool) {
		v, err := get(testCtx(t, time.Minute), key)
		if errors.Is(err, goredis.Nil) {
			return 0, false
		}
		if err != nil {
			t.Fatalf("read %s from the target: %v", key, err)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("target key %s holds %q, not a sequence number", key, v)
		}
		return n, true
	}
}

// TestDrainRedis: while a writer sets and deletes keys without pause,
// `cutover drain` exits 0 only once every write the source acknowledged
// before drain started is in the target (or a later write of its key) —
// checked the moment drain returns, three times in a row, with the sink
// in the replicate process and with two separate `cutover sink` workers.
// The source's connections to Redis are slowed down, so that a write is
// still on its way (its notification not yet heard, or its key being
// read) for longer than drain's first look at the offsets: waiting until
// the sink group has applied the end offsets seen at the start — a lag
// estimate — returns before those writes are in the target, and fails
// here.
func TestDrainRedis(t *testing.T) {
	t.Parallel()
	for _, separate := range []bool{false, true} {
		t.Run(map[bool]string{false: "in-process-sink", true: "sink-workers"}[separate], func(t *testing.T) {
			src, dst := stack.NewRedis(t), stack.NewRedis(t)
			if _, err := datagen.Seed(testCtx(t, time.Minute), src.Client, datagen.Spec{Keys: 1000, Seed: 31}); err != nil {
				t.Fatal(err)
			}
			p := newRedisPipeline(t, src, dst)
			// The source hears and reads the writes 1.5 s late, later than
			// drain's first look at the group's offsets.
			slowSource(t, p, "--redis-addr", src.Addr, 1500*time.Millisecond)
			a, stop := writeRedisAcked(t, src.Client, 500, 1500)
			defer stop()
			args := append([]string{"replicate"}, p.args...)
			if separate {
				args = append(args, "--no-sink")
				for i := range 2 {
					stack.Start(t, nil, append([]string{"sink", "--worker-id", fmt.Sprint(i)}, p.args...)...)
				}
			}
			proc := stack.Start(t, nil, args...)
			// The first drain is sent as soon as the source reads drain
			// requests: before it has started its node (slowed by the proxy)
			// and while the snapshot runs. A source that answered then,
			// with no node to wait for, put its barriers before the writes
			// made so far.
			waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "answering cutover drain") })
			for range 3 {
				drainOnce(t, a, p, seqReader(t, func(ctx context.Context, key string) (string, error) {
					return dst.Client.Get(ctx, key).Result()
				}))
			}
			_, errOut := proc.Output()
			if !strings.Contains(errOut, "drain barrier published") {
				t.Errorf("the source did not log its barrier:\n%s", stack.Tail(errOut, 20))
			}
		})
	}
}

// TestDrainRedisCluster: on a cluster every master is drained — each
// hears its own token (a PUBLISH reaches every node of a cluster, and
// the others' tokens are ignored) — before the barriers go out.
func TestDrainRedisCluster(t *testing.T) {
	t.Parallel()
	cluster := stack.NewRedisCluster(t, 3, 0)
	dst := stack.NewRedis(t)
	p := newRedisPipeline(t, cluster.Masters(t)[0], dst)
	a, stop := writeRedisAcked(t, cluster.Client, 500, 1000)
	defer stop()
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "answering cutover drain") })
	for range 2 {
		drainOnce(t, a, p, seqReader(t, func(ctx context.Context, key string) (string, error) {
			return dst.Client.Get(ctx, key).Result()
		}))
	}
}

// TestDrainTimesOut: drain exits 5 with a report that names what is
// missing — no source answering (replicate stopped), then a source that
// answers but no sink worker applying (replicate --no-sink alone, its
// report as JSON).
func TestDrainTimesOut(t *testing.T) {
	t.Parallel()
	src := stack.NewRedis(t)
	p := newRedisPipeline(t, src, stack.NewRedis(t))
	if err := src.Client.Set(testCtx(t, time.Minute), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// The topic exists once a source ran.
	if res := stack.Run(testCtx(t, 2*time.Minute), t, append([]string{"backfill"}, p.args...)...); res.Code != 0 {
		t.Fatalf("backfill exited %d:\n%s", res.Code, res.Stderr)
	}
	res := stack.Run(testCtx(t, time.Minute), t, append([]string{"drain", "--timeout", "5s"}, p.args...)...)
	if res.Code != 5 {
		t.Fatalf("drain without a source exited %d, want 5:\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "no drain barrier from the source") || !strings.Contains(res.Stderr, "cutover replicate") {
		t.Errorf("drain without a source does not say that the source did not answer:\n%s", res.Stderr)
	}

	proc := stack.Start(t, nil, append([]string{"replicate", "--no-sink"}, p.args...)...)
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "answering cutover drain") })
	if err := src.Client.Set(testCtx(t, time.Minute), "k2", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	res = stack.Run(testCtx(t, time.Minute), t, append([]string{"drain", "--timeout", "15s", "--output", "json"}, p.args...)...)
	if res.Code != 5 {
		t.Fatalf("drain without a sink worker exited %d, want 5:\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	var rep struct {
		Drained    bool   `json:"drained"`
		Barriers   int    `json:"barriers"`
		Expected   int    `json:"barriers_expected"`
		Problem    string `json:"problem"`
		Partitions []struct {
			Barrier  int64 `json:"barrier_offset"`
			Lag      int64 `json:"lag"`
			CaughtUp bool  `json:"caught_up"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
		t.Fatalf("drain --output json printed no JSON: %v\n%s", err, res.Stdout)
	}
	if rep.Drained || rep.Expected != 4 || rep.Barriers != 4 || len(rep.Partitions) != 4 || !strings.Contains(rep.Problem, "sink group") {
		t.Errorf("want every barrier seen, nothing applied, and the sink group named: %+v", rep)
	}
	var lag int64
	for _, pt := range rep.Partitions {
		lag += pt.Lag
	}
	if lag == 0 {
		t.Errorf("no partition reports lag although no worker ran: %s", res.Stdout)
	}
}

// TestDrainDynamoDB: the same as TestDrainRedis for a table source, whose
// drain waits until every stream shard was read past the request plus
// the stream's settle time.
func TestDrainDynamoDB(t *testing.T) {
	t.Parallel()
	stack.LoadDynamoDB(t, 1)
	db := dynamoClient(t)
	o := newOrders(t, db, 200)
	dst := stack.NewRedis(t)
	p := newTablePipeline(t, o.Table, "--target-redis-addr", dst.Addr, "--target-key-template", "order:{userId}:{orderId}")
	// Stream records reach the source 1.5 s late or more, later than
	// drain's first look at the group's offsets (see TestDrainRedis).
	slowSource(t, p, "--source-endpoint", stack.DynamoDBEndpoint(t), 1500*time.Millisecond)
	a, stop := writeTableAcked(t, db, o, 60, 25)
	defer stop()
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	waitLog(t, proc, 2*time.Minute, func(s string) bool { return strings.Contains(s, "answering cutover drain") })
	read := seqReader(t, func(ctx context.Context, key string) (string, error) {
		return dst.Client.HGet(ctx, key, "seq").Result()
	})
	// One drain: with the stream read slowly, every read finds records,
	// and the shard counts as read up to t + settle only once it hands
	// over a record created after that — DynamoDB Local rounds creation
	// times down to the minute, so this drain takes up to 75 s.
	drainOnce(t, a, p, read)
}

// writeTableAcked puts items 1…keys of o (userId "u<i>", orderId 0) with
// a "seq" attribute, and deletes a tenth of the time, until the returned
// function is called. DynamoDB Local with a stream takes few writes a
// second: perSecond is small.
func writeTableAcked(t *testing.T, db *dynamodb.Client, o *datagen.Orders, keys int, perSecond float64) (*ackedWrites, func()) {
	t.Helper()
	a := newAckedWrites()
	stop := pacedWriters(1, perSecond, 1, func(ctx context.Context, _, n int) {
		i := 7 * n
		user := fmt.Sprintf("u%d", 1+i%keys)
		key := "order:" + user + ":0"
		itemKey := map[string]types.AttributeValue{
			"userId": &types.AttributeValueMemberS{Value: user}, "orderId": &types.AttributeValueMemberN{Value: "0"}}
		del := n%7 == 3 // see writeRedisAcked
		seq := a.begin(key, del)
		var err error
		if del {
			_, err = db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(o.Table), Key: itemKey})
		} else {
			item := map[string]types.AttributeValue{"seq": &types.AttributeValueMemberN{Value: strconv.FormatInt(seq, 10)}}
			for k, v := range itemKey {
				item[k] = v
			}
			_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(o.Table), Item: item})
		}
		if err == nil {
			a.ack(key, seq, del)
		}
	})
	return a, stop
}
