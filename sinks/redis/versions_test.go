package redis

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/stack"
)

func TestCompactVersionKeepsTheOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	seq := func(epoch uint64, n string) pipeline.Version {
		v, err := pipeline.SequenceVersion(epoch, n)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	vs := []pipeline.Version{{}, {0}, {0, 0}, pipeline.Version{}.Next().Next(),
		make(pipeline.Version, 8), seq(0, "0"), seq(0, "1"), seq(0, "100000000000000000001"), seq(1, "1"), seq(256, "7"),
		pipeline.ClockVersion(0, 0, false), pipeline.ClockVersion(0, 5, true), pipeline.ClockVersion(1<<56, 5, false),
		pipeline.ClockVersion(^uint64(0), ^uint64(0)>>1, true)}
	for range 2000 {
		epoch := rng.Uint64() >> (rng.IntN(64))
		v := pipeline.ClockVersion(epoch, rng.Uint64()>>rng.IntN(64), rng.IntN(2) == 0)
		for range rng.IntN(3) {
			v = v.Next()
		}
		vs = append(vs, v)
	}
	enc := make([][]byte, len(vs))
	for i, v := range vs {
		c, err := compactVersion(v)
		if err != nil {
			t.Fatalf("compactVersion(%s): %v", v, err)
		}
		back, err := expandVersion(c)
		if err != nil || !bytes.Equal(back, v) {
			t.Fatalf("expandVersion(compactVersion(%s)) = %s, %v", v, back, err)
		}
		enc[i] = c
	}
	for i := range vs {
		for j := range vs {
			if got, want := bytes.Compare(enc[i], enc[j]), vs[i].Compare(vs[j]); got != want {
				t.Fatalf("%s vs %s compare %d, compact %x vs %x compare %d", vs[i], vs[j], want, enc[i], enc[j], got)
			}
		}
	}
	if _, err := compactVersion(pipeline.Version{1}); err == nil {
		t.Error("a short version that is not all zeros has no place in the order, but was taken")
	}
}

func str(key string, ver pipeline.Version, v string) pipeline.Event {
	return pipeline.Event{Key: []byte(key), Op: pipeline.OpUpsert, Origin: pipeline.OriginLive, Version: ver,
		Value: pipeline.Value{Type: pipeline.TypeString, String: []byte(v)}}
}

func del(key string, ver pipeline.Version) pipeline.Event {
	return pipeline.Event{Key: []byte(key), Op: pipeline.OpDelete, Origin: pipeline.OriginLive, Version: ver}
}

func newSink(t *testing.T, cl goredis.UniversalClient, opts Options) *Sink {
	t.Helper()
	s, err := New(cl, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// applyAll applies evs and fails the test unless each was applied.
func applyAll(t *testing.T, s *Sink, evs []pipeline.Event) []pipeline.Result {
	t.Helper()
	res, err := s.Apply(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Outcome != pipeline.Applied {
			t.Fatalf("event %d (%s %s): %+v", i, evs[i].Op, evs[i].Key, r)
		}
	}
	return res
}

func clock(n uint64) pipeline.Version { return pipeline.ClockVersion(0, n, false) }

// Events of many keys now share one script call: a call's events must
// each keep their own comparison, whatever else the call carries.
func TestBatchKeepsEachKeysComparison(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	s := newSink(t, r.Client, Options{Addr: r.Addr, Concurrency: 1})
	// The target holds newer values of some keys, tombstones of others.
	if _, err := s.Apply(ctx, []pipeline.Event{str("held", clock(50), "new"), del("gone", clock(50))}); err != nil {
		t.Fatal(err)
	}
	// One batch: an older read of "held" next to a newer write of "other";
	// an older upsert of "gone" (would resurrect it) next to a delete and
	// a newer upsert of "both" (the delete wins: it is newer).
	batch := []pipeline.Event{
		str("held", clock(40), "old"), str("other", clock(41), "o"),
		str("gone", clock(40), "back"),
		str("both", clock(60), "x"), del("both", clock(61)), str("both", clock(59), "older"),
	}
	res, err := s.Apply(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	want := []pipeline.Outcome{pipeline.SkippedOlder, pipeline.Applied, pipeline.SkippedOlder, pipeline.SkippedOlder, pipeline.Applied, pipeline.SkippedOlder}
	for i := range want {
		if res[i].Outcome != want[i] {
			t.Errorf("event %d (%s %s): %v, want %v (%v)", i, batch[i].Op, batch[i].Key, res[i].Outcome, want[i], res[i].Err)
		}
	}
	for k, v := range map[string]string{"held": "new", "other": "o"} {
		if got := r.Client.Get(ctx, k).Val(); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"gone", "both"} {
		if n := r.Client.Exists(ctx, k).Val(); n != 0 {
			t.Errorf("%s exists: a deleted key came back", k)
		}
	}
	// Applying the same batch again changes nothing.
	res, err = s.Apply(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i := range res {
		if res[i].Outcome == pipeline.Applied {
			t.Errorf("event %d applied twice", i)
		}
	}
}

// A value the server refuses fails its own event, not the others of its
// script call.
func TestBatchRejectsOnlyTheRefusedEvent(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	s := newSink(t, r.Client, Options{Addr: r.Addr, Concurrency: 1})
	// A score that is not a number: ZADD refuses it.
	bad := pipeline.Event{Key: []byte("z"), Op: pipeline.OpUpsert, Origin: pipeline.OriginLive, Version: clock(2),
		Value: pipeline.Value{Type: pipeline.TypeZSet, ZSet: []pipeline.ScoredMember{{Member: []byte("m"), Score: math.NaN()}}}}
	res, err := s.Apply(ctx, []pipeline.Event{str("a", clock(1), "1"), bad, str("b", clock(1), "2")})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome != pipeline.Applied || res[2].Outcome != pipeline.Applied {
		t.Errorf("the good events next to a refused one: %+v, %+v", res[0], res[2])
	}
	if res[1].Outcome != pipeline.Rejected || res[1].Err == nil || !strings.Contains(res[1].Err.Error(), "float") {
		t.Errorf("a zset with a NaN score: %+v, want rejected with the server's error", res[1])
	}
	if vs, err := s.Versions(ctx, []string{"z"}); err != nil || vs["z"] != nil {
		t.Errorf("a rejected event left a version: %v %v", vs, err)
	}
}

// On a cluster a script call's keys must share a slot: a batch over many
// slots is cut into calls per slot, and every key lands.
func TestBatchAcrossClusterSlots(t *testing.T) {
	c := stack.NewRedisCluster(t, 3, 0)
	ctx := context.Background()
	s := newSink(t, c.Client, Options{Addr: "cluster"})
	var evs []pipeline.Event
	for i := range 2000 {
		evs = append(evs, str(fmt.Sprintf("k:%d", i), clock(1), "v"), str(fmt.Sprintf("{same}:%d", i), clock(1), "v"))
	}
	applyAll(t, s, evs)
	vs, err := s.Versions(ctx, []string{"k:7", "{same}:7"})
	if err != nil || !bytes.Equal(vs["k:7"], clock(1)) || !bytes.Equal(vs["{same}:7"], clock(1)) {
		t.Errorf("versions read back: %v %v", vs, err)
	}
}

// A tombstone protects its key for the retention, then no more: past its
// deadline an older upsert is taken, and the bucket drops the entry when
// it is next cleaned.
func TestBucketEntriesExpire(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	s := newSink(t, r.Client, Options{Addr: r.Addr, Concurrency: 1, TombstoneRetention: time.Second})
	// 63 keys in one slot (one bucket): tombstones, and values with no
	// expiry, which keep their entries.
	var evs []pipeline.Event
	for i := range 63 {
		if i%3 == 0 {
			evs = append(evs, str(fmt.Sprintf("{b}:%d", i), clock(10), "kept"))
		} else {
			evs = append(evs, del(fmt.Sprintf("{b}:%d", i), clock(10)))
		}
	}
	if _, err := s.Apply(ctx, evs); err != nil {
		t.Fatal(err)
	}
	bkey := bucketKey("cutover:v:", []byte("{b}"), 1)
	if n := r.Client.HLen(ctx, bkey).Val(); n != 63 {
		t.Fatalf("bucket %s holds %d entries, want 63", bkey, n)
	}
	res, err := s.Apply(ctx, []pipeline.Event{str("{b}:1", clock(5), "old")})
	if err != nil || res[0].Outcome != pipeline.SkippedOlder {
		t.Fatalf("an older upsert over a fresh tombstone: %+v %v", res, err)
	}
	// Wait until the deadlines (whole seconds) have passed.
	deadline := time.Now().Add(time.Minute)
	for {
		vs, err := s.Versions(ctx, []string{"{b}:2", "{b}:0"})
		if err != nil {
			t.Fatal(err)
		}
		if vs["{b}:0"] == nil {
			t.Fatal("the version of a value with no expiry went away")
		}
		if vs["{b}:2"] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tombstone did not expire within a minute of a one-second retention")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The 64th entry cleans the bucket: the 42 tombstones go, the 21
	// values' entries stay; then a new one.
	if _, err := s.Apply(ctx, []pipeline.Event{str("{b}:new", clock(20), "n")}); err != nil {
		t.Fatal(err)
	}
	if n := r.Client.HLen(ctx, bkey).Val(); n != 22 {
		t.Errorf("after cleaning the bucket holds %d entries, want 22 (21 values and the new one)", n)
	}
	res, err = s.Apply(ctx, []pipeline.Event{str("{b}:1", clock(5), "old")})
	if err != nil || res[0].Outcome != pipeline.Applied {
		t.Errorf("an upsert past the tombstone's retention: %+v %v", res, err)
	}
}

// A target written before buckets keeps its versions in a string key per
// data key. They still protect their keys, and the key's next write puts
// its version in the bucket.
func TestLegacyVersionKeysAreReadThrough(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	if err := r.Client.Set(ctx, "k", "new", 0).Err(); err != nil {
		t.Fatal(err)
	}
	lk := legacyKey("cutover:v:", []byte("k"))
	if err := r.Client.Set(ctx, lk, []byte(clock(50)), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	s := newSink(t, r.Client, Options{Addr: r.Addr})
	if !s.legacyOn() {
		t.Fatal("a target that held keys was not read for legacy version keys")
	}
	if vs, err := s.Versions(ctx, []string{"k"}); err != nil || !bytes.Equal(vs["k"], clock(50)) {
		t.Fatalf("Versions of a legacy key: %v %v", vs, err)
	}
	res, err := s.Apply(ctx, []pipeline.Event{str("k", clock(40), "old")})
	if err != nil || res[0].Outcome != pipeline.SkippedOlder || r.Client.Get(ctx, "k").Val() != "new" {
		t.Fatalf("an older upsert over a legacy version: %+v %v", res, err)
	}
	res, err = s.Apply(ctx, []pipeline.Event{str("k", clock(60), "newer")})
	if err != nil || res[0].Outcome != pipeline.Applied {
		t.Fatalf("a newer upsert: %+v %v", res, err)
	}
	// Workers of the old layout may still run: the legacy key is kept
	// current with the bucket's entry.
	if got := r.Client.Get(ctx, lk).Val(); got != string(clock(60)) {
		t.Errorf("the legacy version key holds %x, want the new version %s", got, clock(60))
	}
	if vs, err := s.Versions(ctx, []string{"k"}); err != nil || !bytes.Equal(vs["k"], clock(60)) {
		t.Errorf("Versions after the move: %v %v", vs, err)
	}
	// A fresh target has no legacy keys to look for.
	if fresh := newSink(t, stack.NewRedis(t).Client, Options{}); fresh.legacyOn() {
		t.Error("an empty target is looked at for legacy version keys")
	}
}

// Managed Redis (ElastiCache Serverless, for one) refuses a script that
// touches a key it did not declare. The apply script is run here with
// redis.call and redis.pcall checked against KEYS, over every kind of
// write it makes: each type, pieces, a stream with groups, a legacy
// version moved, a bucket cleaned.
func TestApplyScriptDeclaresEveryKey(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	audit := `
local declared = {}
for _, k in ipairs(KEYS) do declared[k] = true end
local real = redis
local function check(cmd, ...)
  local c, a = string.upper(cmd), {...}
  local key = a[1]
  if c == 'TIME' then return end
  if c == 'XGROUP' or c == 'XINFO' then key = a[2] end
  if not declared[key] then error('cutover test: ' .. c .. ' touched undeclared key ' .. tostring(key)) end
end
local redis = setmetatable({
  call = function(cmd, ...) check(cmd, ...); return real.call(cmd, ...) end,
  pcall = function(cmd, ...) check(cmd, ...); return real.pcall(cmd, ...) end,
}, {__index = real})
`
	applied := goredis.NewScript(audit + applyLua)
	saved := applyScript
	applyScript = applied
	t.Cleanup(func() { applyScript = saved })
	if err := r.Client.Set(ctx, "seed", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Client.Set(ctx, legacyKey("cutover:v:", []byte("l")), []byte(clock(1)), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	s := newSink(t, r.Client, Options{Addr: r.Addr, TombstoneRetention: time.Second})
	h := func(n string) pipeline.Value {
		return pipeline.Value{Type: pipeline.TypeHash, Hash: []pipeline.Field{{Name: []byte("f"), Value: []byte(n)}}}
	}
	evs := []pipeline.Event{str("l", clock(2), "moved"),
		{Key: []byte("h"), Op: pipeline.OpUpsert, Version: clock(2), Value: h("1"), ExpireAt: time.Now().Add(time.Hour)},
		{Key: []byte("li"), Op: pipeline.OpUpsert, Version: clock(2), Value: pipeline.Value{Type: pipeline.TypeList, List: [][]byte{[]byte("a")}}},
		{Key: []byte("li"), Op: pipeline.OpUpsert, Version: clock(2), Chunk: &pipeline.Chunk{Index: 1, Offset: 1}, Value: pipeline.Value{Type: pipeline.TypeList, List: [][]byte{[]byte("b")}}},
		{Key: []byte("se"), Op: pipeline.OpUpsert, Version: clock(2), Value: pipeline.Value{Type: pipeline.TypeSet, Set: [][]byte{[]byte("a")}}},
		{Key: []byte("zs"), Op: pipeline.OpUpsert, Version: clock(2), Value: pipeline.Value{Type: pipeline.TypeZSet, ZSet: []pipeline.ScoredMember{{Member: []byte("a"), Score: 1}}}},
		{Key: []byte("st"), Op: pipeline.OpUpsert, Version: clock(2), Value: pipeline.Value{Type: pipeline.TypeStream, Stream: &pipeline.Stream{
			LastID: "5-0", EntriesAdded: 1, MaxDeletedID: "0-0",
			Entries: []pipeline.StreamEntry{{ID: "1-0", Fields: []pipeline.Field{{Name: []byte("f"), Value: []byte("v")}}}},
			Groups:  []pipeline.StreamGroup{{Name: []byte("g"), LastDeliveredID: "1-0", EntriesRead: 1}}}}},
		del("seed", clock(2)),
	}
	for i := range 70 {
		evs = append(evs, del(fmt.Sprintf("{c}:%d", i), clock(1)))
	}
	applyAll(t, s, evs)
	// Past the one-second deadlines, the bucket's 128th entry cleans it.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		vs, err := s.Versions(ctx, []string{"{c}:0"})
		if err != nil {
			t.Fatal(err)
		}
		if vs["{c}:0"] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a one-second tombstone did not expire within a minute")
		}
	}
	var more []pipeline.Event
	for i := 70; i < 128; i++ {
		more = append(more, del(fmt.Sprintf("{c}:%d", i), clock(1)))
	}
	res := applyAll(t, s, more)
	if n := r.Client.HLen(ctx, bucketKey("cutover:v:", []byte("{c}"), 1)).Val(); n >= 128 {
		t.Errorf("the bucket was not cleaned (%d entries)", n)
	}
	if strings.Contains(fmt.Sprint(res), "undeclared") {
		t.Error(res)
	}
}

// The number of buckets per slot decides where every version is: a
// target keeps the one it was first written with, a pipeline that does
// not say takes it, and one that asks for another is refused before it
// writes (it would not find the versions there, and older events would
// win over them).
func TestBucketCountIsTheTargets(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	first := newSink(t, r.Client, Options{Addr: r.Addr, VersionBuckets: 4})
	if _, err := first.Apply(ctx, []pipeline.Event{str("a", clock(5), "x"), str("b", clock(5), "y")}); err != nil {
		t.Fatal(err)
	}
	if n := r.Client.Exists(ctx, bucketKey("cutover:v:", []byte("a"), 4)).Val(); n != 1 {
		t.Fatal("the version is not in the bucket of four per slot")
	}
	second := newSink(t, r.Client, Options{Addr: r.Addr})
	if second.opts.VersionBuckets != 4 {
		t.Fatalf("a pipeline that did not say took %d buckets per slot, the target has 4", second.opts.VersionBuckets)
	}
	res, err := second.Apply(ctx, []pipeline.Event{str("a", clock(4), "older")})
	if err != nil || res[0].Outcome != pipeline.SkippedOlder {
		t.Errorf("an older event through the second pipeline: %+v %v", res, err)
	}
	other, err := New(r.Client, Options{Addr: r.Addr, VersionBuckets: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Prepare(ctx); err == nil || !strings.Contains(err.Error(), "version_buckets to 4") {
		t.Errorf("a pipeline asking for 2 buckets per slot on a target with 4: %v", err)
	}
}

// reconcile and status read a target through a sink: preparing one and
// reading versions must not write to the target. The layout record was
// written at Prepare, so a reconcile left cutover:v:layout behind (make
// bench's plain compare found it); it is now written with the first
// write.
func TestPreparingASinkWritesNothing(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	s := newSink(t, r.Client, Options{Addr: r.Addr})
	if _, err := s.Versions(ctx, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if n := r.Client.DBSize(ctx).Val(); n != 0 {
		t.Fatalf("a sink that only read holds %d keys on the target", n)
	}
	applyAll(t, s, []pipeline.Event{str("a", clock(1), "x")})
	if got := r.Client.Get(ctx, s.layoutKey()).Val(); got != "buckets n=1" {
		t.Errorf("after the first write the layout record says %q", got)
	}
}
