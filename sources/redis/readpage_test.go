package redis

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/stack"
)

// readOutcome is what Read made of some keys, in a form two reads of the
// same state compare equal in: by key, versions and read times left out.
type readOutcome struct {
	events    map[string]pipeline.Event
	rejects   map[string]string // key → class
	vanished  int64
	skipped   int64
	big       []string // "key type size"
	elsewhere []string
}

func outcomeOf(t *testing.T, b pipeline.Batch, c ReadCounts) readOutcome {
	t.Helper()
	o := readOutcome{events: map[string]pipeline.Event{}, rejects: map[string]string{}, vanished: c.Vanished, skipped: c.Skipped}
	for _, e := range b.Events {
		if _, dup := o.events[string(e.Key)]; dup {
			t.Fatalf("two events for %q", e.Key)
		}
		o.events[string(e.Key)] = e
	}
	for _, r := range b.Rejects {
		o.rejects[string(r.Key)] = r.Class
	}
	for _, bk := range c.Big {
		o.big = append(o.big, fmt.Sprintf("%s %s %d", bk.Key, bk.Type, bk.Size))
	}
	o.elsewhere = slices.Clone(c.Elsewhere)
	slices.Sort(o.big)
	slices.Sort(o.elsewhere)
	return o
}

// readAlone reads every key in a call of its own (readScript): what Read
// did before it read a page per call.
func readAlone(ctx context.Context, t *testing.T, rd *Reader, keys []string, origin pipeline.Origin) readOutcome {
	t.Helper()
	var all pipeline.Batch
	var counts ReadCounts
	for _, k := range keys {
		b, c, err := rd.Read(ctx, []string{k}, origin, nil)
		must(t, err)
		all.Events = append(all.Events, b.Events...)
		all.Rejects = append(all.Rejects, b.Rejects...)
		counts.Vanished += c.Vanished
		counts.Skipped += c.Skipped
		counts.Big = append(counts.Big, c.Big...)
		counts.Elsewhere = append(counts.Elsewhere, c.Elsewhere...)
	}
	return outcomeOf(t, all, counts)
}

// sameOutcome fails the test where two reads of unchanged keys differ.
// Expiries may differ by the millisecond the clock ticked between them.
func sameOutcome(t *testing.T, got, want readOutcome) {
	t.Helper()
	if len(got.events) != len(want.events) {
		t.Errorf("%d events, want %d", len(got.events), len(want.events))
	}
	for k, w := range want.events {
		g, ok := got.events[k]
		switch {
		case !ok:
			t.Errorf("no event for %q", k)
		case g.Op != w.Op || g.Origin != w.Origin || !reflect.DeepEqual(g.Value, w.Value):
			t.Errorf("event of %q is %v %v %+v, want %v %v %+v", k, g.Op, g.Origin, g.Value, w.Op, w.Origin, w.Value)
		case g.ExpireAt.IsZero() != w.ExpireAt.IsZero() || g.ExpireAt.Sub(w.ExpireAt).Abs() > 2*time.Millisecond:
			t.Errorf("%q expires at %v, want %v", k, g.ExpireAt, w.ExpireAt)
		}
	}
	if !reflect.DeepEqual(got.rejects, want.rejects) {
		t.Errorf("rejects %v, want %v", got.rejects, want.rejects)
	}
	if got.vanished != want.vanished || got.skipped != want.skipped {
		t.Errorf("vanished %d, skipped %d; want %d, %d", got.vanished, got.skipped, want.vanished, want.skipped)
	}
	if !slices.Equal(got.big, want.big) || !slices.Equal(got.elsewhere, want.elsewhere) {
		t.Errorf("big %v, elsewhere %v; want %v, %v", got.big, got.elsewhere, want.big, want.elsewhere)
	}
}

var evalshaCalls = regexp.MustCompile(`cmdstat_evalsha:calls=(\d+)`)

// scriptCalls is how many script calls the server ran since the last
// CONFIG RESETSTAT.
func scriptCalls(ctx context.Context, t *testing.T, c *goredis.Client) int {
	t.Helper()
	info, err := c.Info(ctx, "commandstats").Result()
	must(t, err)
	m := evalshaCalls.FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	must(t, err)
	return n
}

// Each key used to cost the source Redis a script call and a TIME of its
// own: a snapshot took 2.4 times the server CPU of SCAN + DUMP and ran at
// a third of its speed. A page is one call now. This pins that one call
// reads a page of every kind of key exactly as a call per key did: every
// type, a TTL, a missing key, a key over the limits, one to read in
// pieces, and a type not selected; all at the one TIME of the call.
func TestPageReadsEveryKindOfKeyAsPerKey(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	c := src.Client
	must(t, c.Set(ctx, "str", "hello", 0).Err())
	must(t, c.Set(ctx, "ttl", "soon", 0).Err())
	must(t, c.PExpireAt(ctx, "ttl", time.Now().Add(time.Hour)).Err())
	must(t, c.Set(ctx, "empty", "", 0).Err())
	must(t, c.HSet(ctx, "hash", "f1", "v1", "f2", "v2").Err())
	must(t, c.RPush(ctx, "list", "a", "b", "a").Err())
	must(t, c.SAdd(ctx, "set", "x", "y", "z").Err())
	must(t, c.ZAdd(ctx, "zset", goredis.Z{Score: 1.5, Member: "m1"}, goredis.Z{Score: -2, Member: "m2"}).Err())
	must(t, c.XAdd(ctx, &goredis.XAddArgs{Stream: "stream", ID: "1-1", Values: []any{"f", "v"}}).Err())
	must(t, c.XGroupCreate(ctx, "stream", "g", "0").Err())
	for i := range 50 {
		must(t, c.SAdd(ctx, "bigset", fmt.Sprintf("m%d", i)).Err()) // over MaxElements
		must(t, c.RPush(ctx, "chunked", fmt.Sprintf("e%d", i)).Err())
	}
	must(t, c.Del(ctx, "chunked").Err())
	for i := range 30 {
		must(t, c.RPush(ctx, "chunked", fmt.Sprintf("e%d", i)).Err()) // over ChunkElements, under MaxElements
	}
	keys := []string{"str", "ttl", "empty", "missing", "hash", "list", "set", "zset", "stream", "bigset", "chunked"}

	opts := ReaderOptions{Name: "t", MaxElements: 40, ChunkElements: 20}
	rd := NewReader(c, redisconn.Conn{Addr: src.Addr}, opts)
	must(t, rd.Prepare(ctx))
	want := readAlone(ctx, t, rd, keys, pipeline.OriginLive)
	if len(want.events) != 9 || len(want.rejects) != 1 || len(want.big) != 1 {
		t.Fatalf("read alone: %d events, rejects %v, big %v; want 9 (8 keys and a delete), 1, 1", len(want.events), want.rejects, want.big)
	}

	must(t, c.ConfigResetStat(ctx).Err())
	b, counts, err := rd.Read(ctx, keys, pipeline.OriginLive, nil)
	must(t, err)
	if n := scriptCalls(ctx, t, c); n != 1 {
		t.Errorf("the page took %d script calls, want 1", n)
	}
	sameOutcome(t, outcomeOf(t, b, counts), want)
	for _, e := range b.Events[1:] {
		if e.Version.Compare(b.Events[0].Version) != 0 {
			t.Errorf("%q read at version %v, %q at %v: one call reads at one TIME", e.Key, e.Version, b.Events[0].Key, b.Events[0].Version)
		}
	}
	if len(counts.Big) == 1 && counts.Big[0].micros != b.Events[0].Version.ClockMicros() {
		t.Errorf("the key to read in pieces was read at %d, the page at %d", counts.Big[0].micros, b.Events[0].Version.ClockMicros())
	}

	// A type not selected is skipped in a page as alone.
	opts.Types = []pipeline.Type{pipeline.TypeString, pipeline.TypeHash, pipeline.TypeSet, pipeline.TypeZSet, pipeline.TypeStream}
	skip := NewReader(c, redisconn.Conn{Addr: src.Addr}, opts)
	want = readAlone(ctx, t, skip, keys, pipeline.OriginSnapshot)
	if want.skipped != 2 || want.vanished != 1 {
		t.Fatalf("read alone: skipped %d, vanished %d; want the two lists, the missing key", want.skipped, want.vanished)
	}
	b, counts, err = skip.Read(ctx, keys, pipeline.OriginSnapshot, nil)
	must(t, err)
	sameOutcome(t, outcomeOf(t, b, counts), want)
}

// A call's reply is bounded: once its values add up to pageBytes, the
// keys after them are read by a following call (at a later TIME), and a
// call never holds more than pageKeys keys. Either way every key is read,
// and read as alone.
func TestPageReadSplitsByBudgetAndCount(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	c := src.Client
	var large []string
	value := strings.Repeat("v", 100_000)
	for i := range 50 {
		k := fmt.Sprintf("large:%02d", i)
		large = append(large, k)
		must(t, c.Set(ctx, k, value+k, 0).Err())
	}
	rd := NewReader(c, redisconn.Conn{Addr: src.Addr}, ReaderOptions{Name: "t"})
	must(t, rd.Prepare(ctx))
	want := readAlone(ctx, t, rd, large, pipeline.OriginSnapshot)

	must(t, c.ConfigResetStat(ctx).Err())
	b, counts, err := rd.Read(ctx, large, pipeline.OriginSnapshot, nil)
	must(t, err)
	// 50 values of 100 KB against a budget of 2 MiB: 21 keys a call
	// (the 21st takes it over the budget), then 21, then 8.
	if n := scriptCalls(ctx, t, c); n != 3 {
		t.Errorf("50 values of 100 KB took %d script calls, want 3", n)
	}
	got := outcomeOf(t, b, counts)
	sameOutcome(t, got, want)
	first, last := got.events[large[0]].Version, got.events[large[49]].Version
	if !last.Newer(first) {
		t.Errorf("the last key was read at %v, not after the first at %v: a following call takes its own TIME", last, first)
	}

	var small []string
	pipe := c.Pipeline()
	for i := range 2*pageKeys + 10 {
		k := fmt.Sprintf("small:%05d", i)
		small = append(small, k)
		pipe.Set(ctx, k, k, 0)
	}
	_, err = pipe.Exec(ctx)
	must(t, err)
	must(t, c.ConfigResetStat(ctx).Err())
	b, _, err = rd.Read(ctx, small, pipeline.OriginSnapshot, nil)
	must(t, err)
	if n := scriptCalls(ctx, t, c); n != 3 {
		t.Errorf("%d small keys took %d script calls, want 3 of at most %d keys", len(small), n, pageKeys)
	}
	if len(b.Events) != len(small) {
		t.Errorf("%d events of %d keys", len(b.Events), len(small))
	}
	for _, e := range b.Events {
		if string(e.Value.String) != string(e.Key) {
			t.Fatalf("%q read as %q", e.Key, e.Value.String)
		}
	}
}

// A script that declares a key its user may not read fails whole with
// NOPERM. A page with one forbidden key must not fail (nor reject) the
// other keys: that page is read again key by key, so the forbidden key
// alone is a RejectUnreadable reject, as it was when every key had its
// own call.
func TestPageReadFallsBackPerKeyOnACL(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	admin := src.Client
	must(t, admin.Do(ctx, "ACL", "SETUSER", "reader", "on", ">pw", "~open:*", "+@all").Err())
	keys := []string{"open:1", "open:2", "secret:1", "open:3", "open:gone"}
	for _, k := range keys[:4] {
		must(t, admin.Set(ctx, k, "v-"+k, 0).Err())
	}
	cl := goredis.NewClient(&goredis.Options{Addr: src.Addr, Username: "reader", Password: "pw"})
	t.Cleanup(func() { cl.Close() })
	rd := NewReader(cl, redisconn.Conn{Addr: src.Addr, Username: "reader", Password: "pw"}, ReaderOptions{Name: "t"})
	must(t, rd.Prepare(ctx))

	b, counts, err := rd.Read(ctx, keys, pipeline.OriginLive, nil)
	must(t, err)
	got := outcomeOf(t, b, counts)
	if len(got.rejects) != 1 || got.rejects["secret:1"] != RejectUnreadable {
		t.Errorf("rejects %v, want secret:1 alone as %s", got.rejects, RejectUnreadable)
	}
	for _, k := range []string{"open:1", "open:2", "open:3"} {
		if e, ok := got.events[k]; !ok || string(e.Value.String) != "v-"+k {
			t.Errorf("%q: %+v, want its value", k, e)
		}
	}
	if e, ok := got.events["open:gone"]; !ok || e.Op != pipeline.OpDelete {
		t.Errorf("open:gone: %+v, want a delete", e)
	}
	sameOutcome(t, got, readAlone(ctx, t, rd, keys, pipeline.OriginLive))
}

// On a cluster a script's keys must share a slot. A page of keys of many
// slots is read by slot, through a cluster client as through a master's
// own client (the snapshot's), which is found to be a cluster's by the
// CROSSSLOT its first page meets; keys of another master's slots are
// Elsewhere, never deletes.
func TestPageReadOnClusterGoesBySlot(t *testing.T) {
	ctx := context.Background()
	cluster := stack.NewRedisCluster(t, 3, 0)
	var keys []string
	for i := range 30 {
		keys = append(keys, fmt.Sprintf("k%d", i), fmt.Sprintf("{tag}%d", i))
	}
	for _, k := range keys {
		must(t, cluster.Client.Set(ctx, k, "v-"+k, 0).Err())
	}
	keys = append(keys, "{tag}gone", "gone")

	all := NewReader(cluster.Client, redisconn.Conn{Addr: cluster.Nodes[0].Addr}, ReaderOptions{Name: "t"})
	must(t, all.Prepare(ctx))
	want := readAlone(ctx, t, all, keys, pipeline.OriginLive)
	if len(want.events) != len(keys) || len(want.elsewhere) != 0 {
		t.Fatalf("read alone through the cluster client: %d events, elsewhere %v", len(want.events), want.elsewhere)
	}
	b, counts, err := all.Read(ctx, keys, pipeline.OriginLive, nil)
	must(t, err)
	sameOutcome(t, outcomeOf(t, b, counts), want)

	tagSlot := pipeline.RedisSlot([]byte("{tag}"))
	for _, m := range cluster.Masters(t) {
		rd := NewReader(m.Client, redisconn.Conn{Addr: m.Addr}, ReaderOptions{Name: "t"})
		must(t, rd.Prepare(ctx))
		want := readAlone(ctx, t, rd, keys, pipeline.OriginLive)
		must(t, m.Client.ConfigResetStat(ctx).Err())
		b, counts, err := rd.Read(ctx, keys, pipeline.OriginLive, nil)
		must(t, err)
		got := outcomeOf(t, b, counts)
		sameOutcome(t, got, want)
		if len(got.events)+len(got.elsewhere) != len(keys) {
			t.Errorf("%s: %d events and %d elsewhere of %d keys", m.Addr, len(got.events), len(got.elsewhere), len(keys))
		}
		if !rd.bySlot.Load() {
			t.Errorf("%s: the reader did not go by slot", m.Addr)
		}
		if _, ok := got.events["{tag}1"]; ok {
			// The 31 keys of {tag} went in one call: the calls are fewer
			// than the keys of this master.
			if n := scriptCalls(ctx, t, m.Client); n >= len(got.events) {
				t.Errorf("%s serves slot %d: %d script calls for %d keys", m.Addr, tagSlot, n, len(got.events))
			}
		}
	}
}

// While a slot migrates, a script whose keys are only partly still on the
// old master is refused whole with TRYAGAIN, for as long as the migration
// lasts; a page read retried it for two minutes and failed. The page is
// read key by key instead: the keys still there are read, the ones gone
// to the new master are Elsewhere (ASK), never deletes.
func TestPageReadFallsBackPerKeyInMigratingSlot(t *testing.T) {
	ctx := context.Background()
	cluster := stack.NewRedisCluster(t, 3, 0)
	keys := []string{"{mig}1", "{mig}2", "{mig}3"}
	for _, k := range keys {
		must(t, cluster.Client.Set(ctx, k, "v-"+k, 0).Err())
	}
	slot := pipeline.RedisSlot([]byte("{mig}"))
	var from, to *stack.Redis
	for _, m := range cluster.Masters(t) {
		n, err := m.Client.ClusterCountKeysInSlot(ctx, slot).Result()
		must(t, err)
		switch {
		case n > 0:
			from = m
		case to == nil:
			to = m
		}
	}
	if from == nil || to == nil {
		t.Fatal("found no master holding the slot and no other master")
	}
	fromID, err := from.Client.Do(ctx, "CLUSTER", "MYID").Text()
	must(t, err)
	toID, err := to.Client.Do(ctx, "CLUSTER", "MYID").Text()
	must(t, err)
	must(t, to.Client.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromID).Err())
	must(t, from.Client.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", toID).Err())
	host, port, _ := strings.Cut(to.Addr, ":")
	must(t, from.Client.Do(ctx, "MIGRATE", host, port, "{mig}2", 0, 5000).Err())

	rd := NewReader(from.Client, redisconn.Conn{Addr: from.Addr}, ReaderOptions{Name: "t"})
	must(t, rd.Prepare(ctx))
	b, counts, err := rd.Read(ctx, keys, pipeline.OriginLive, nil)
	must(t, err)
	got := outcomeOf(t, b, counts)
	if len(got.events) != 2 || got.events["{mig}1"].Op != pipeline.OpUpsert || got.events["{mig}3"].Op != pipeline.OpUpsert {
		t.Errorf("events %v, want {mig}1 and {mig}3 read", got.events)
	}
	if !slices.Equal(got.elsewhere, []string{"{mig}2"}) {
		t.Errorf("elsewhere %v, want {mig}2", got.elsewhere)
	}
}
