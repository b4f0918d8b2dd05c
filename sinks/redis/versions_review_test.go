package redis

// Each test here pins a defect an adversarial review found in the first
// version of the bucket layout; each failed on it.

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/stack"
)

// A deadline is packed as 4 bytes of Unix seconds (struct.pack '>I4'),
// which wraps past 2106-02-07. A DynamoDB TTL attribute of 9999999999 (a
// common "never" sentinel, year 2286), or a Redis key with a TTL of ~80
// years, gives a version entry whose deadline wraps into the past: the
// entry protects nothing from the moment it is written, and an older
// event overwrites the newer value.
func TestFarExpiryDeadlineWraps(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	s := newSink(t, r.Client, Options{Addr: r.Addr, Concurrency: 1})
	newer := str("k", clock(10), "newer")
	newer.ExpireAt = time.Unix(9999999999, 0)
	applyAll(t, s, []pipeline.Event{newer})
	if vs, err := s.Versions(ctx, []string{"k"}); err != nil || !bytes.Equal(vs["k"], clock(10)) {
		t.Errorf("Versions of a key expiring in 2286: %v %v, want %s", vs, err, clock(10))
	}
	res, err := s.Apply(ctx, []pipeline.Event{str("k", clock(5), "older")})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome != pipeline.SkippedOlder || r.Client.Get(ctx, "k").Val() != "newer" {
		t.Errorf("an older event over a key expiring in 2286: %v, k = %q; want skipped-older and \"newer\"", res[0].Outcome, r.Client.Get(ctx, "k").Val())
	}
}

// The same wrap with a long retention: now + 80 years is past 2^32
// seconds, so every tombstone is dead when written and an older upsert
// brings the deleted key back.
func TestLongRetentionTombstoneWraps(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	s := newSink(t, r.Client, Options{Addr: r.Addr, Concurrency: 1, TombstoneRetention: 80 * 365 * 24 * time.Hour})
	applyAll(t, s, []pipeline.Event{del("k", clock(10))})
	res, err := s.Apply(ctx, []pipeline.Event{str("k", clock(5), "older")})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome != pipeline.SkippedOlder || r.Client.Exists(ctx, "k").Val() != 0 {
		t.Errorf("an older upsert over a fresh tombstone (80-year retention): %v; the deleted key came back", res[0].Outcome)
	}
}

// A tombstone's deadline is now + ceil(retention) in whole seconds, with
// now the server's TIME seconds (rounded down): a delete made at x.9s
// protects its key up to a second less than TombstoneRetention (the old
// layout used PX, exact to the millisecond). Here a 2 s retention lets
// an older upsert in about 1.1 s after the delete.
func TestTombstoneLivesItsWholeRetention(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	const retention = 2 * time.Second
	s := newSink(t, r.Client, Options{Addr: r.Addr, Concurrency: 1, TombstoneRetention: retention})
	// Delete late in a second.
	for time.Now().Nanosecond() < 900_000_000 {
		time.Sleep(5 * time.Millisecond)
	}
	deleted := time.Now()
	applyAll(t, s, []pipeline.Event{del("k", clock(10))})
	for {
		res, err := s.Apply(ctx, []pipeline.Event{str("k", clock(5), "older")})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Outcome == pipeline.Applied {
			if took := time.Since(deleted); took < retention {
				t.Errorf("an older upsert brought the deleted key back %v after the delete; the tombstone retention is %v", took.Round(time.Millisecond), retention)
			}
			return
		}
		if time.Since(deleted) > time.Minute {
			t.Fatal("the tombstone never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Keys under the version prefix are the sink's own, yet the sink writes
// an event whose key is one of them as data: nothing on the source side
// filters them either, so a reverse pipeline Redis -> Redis (or any chain)
// copies the forward target's buckets (cutover:v:b{tag}, a hash) into the
// reverse target under the same names: the data write replaces the
// reverse sink's own bucket, and with it the versions and tombstones of
// every key of that slot. An older event then overwrites a newer value.
func TestDataKeyUnderTheVersionPrefixIsRefused(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	s := newSink(t, r.Client, Options{Addr: r.Addr, Concurrency: 1})
	applyAll(t, s, []pipeline.Event{str("a", clock(10), "newer")})
	bucket := bucketKey("cutover:v:", []byte("a"), 1)
	// The forward target's bucket of the same slot, read as a hash.
	fwd := pipeline.Event{Key: []byte(bucket), Op: pipeline.OpUpsert, Origin: pipeline.OriginLive, Version: clock(1),
		Value: pipeline.Value{Type: pipeline.TypeHash, Hash: []pipeline.Field{{Name: []byte("zz"), Value: []byte("v\x01\x00")}}}}
	res, err := s.Apply(ctx, []pipeline.Event{fwd})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome != pipeline.Rejected {
		t.Errorf("an event for the sink's own key %q: %v, want rejected", bucket, res[0].Outcome)
	}
	res, err = s.Apply(ctx, []pipeline.Event{str("a", clock(5), "older")})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome != pipeline.SkippedOlder || r.Client.Get(ctx, "a").Val() != "newer" {
		t.Errorf("an older event after its bucket was written as data: %v, a = %q", res[0].Outcome, r.Client.Get(ctx, "a").Val())
	}
	// The layout record, the same way.
	res, err = s.Apply(ctx, []pipeline.Event{str("cutover:v:layout", clock(1), "x")})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome != pipeline.Rejected {
		t.Errorf("an event for the layout record: %v, want rejected", res[0].Outcome)
	}
	next, err := New(r.Client, Options{Addr: r.Addr})
	if err != nil {
		t.Fatal(err)
	}
	if err := next.Prepare(ctx); err != nil {
		t.Errorf("a worker starting after the layout record was written as data: %v", err)
	}
}

// oldApplyLua is the apply script before buckets (e82caf5^), cut to
// what these tests send it (whole strings and deletes): a version key per
// data key, its value the raw version.
const oldApplyLua = `local function newer(a, b)
  if not b then return true end
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local key, vkey, ver, op = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
if not newer(ver, redis.call('GET', vkey)) then return 0 end
if op == 'd' then
  redis.call('DEL', key)
else
  redis.call('SET', key, ARGV[7])
end
redis.call('SET', vkey, ver, 'PX', ARGV[5])
return 1
`

// A rolling upgrade (the Helm chart's sink Deployment, the StatefulSet)
// runs workers of the old layout beside workers of the new for a while.
// A new worker moves a key's version into its bucket and DELETES the
// legacy key; an old worker that then replays the partition's uncommitted
// records (a rebalance hands it the partition) finds no version and
// writes an older state over the newer one: here it brings back a key the
// new worker deleted, and the new layout keeps it (its tombstone says it
// is deleted, so nothing repairs it). docs/redis.md says an upgrade
// "needs nothing".
func TestRollingUpgradeOldWorkerAfterNewWorker(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	old := goredis.NewScript(oldApplyLua)
	oldApply := func(ev pipeline.Event) int64 {
		t.Helper()
		op, val := "u", ""
		if ev.Op == pipeline.OpDelete {
			op = "d"
		} else {
			val = string(ev.Value.String)
		}
		ret := strconv.FormatInt((8 * 24 * time.Hour).Milliseconds(), 10)
		n, err := old.Run(ctx, r.Client, []string{string(ev.Key), legacyKey("cutover:v:", ev.Key)},
			[]byte(ev.Version), op, "string", "", ret, "", val).Int64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// An old worker wrote k before the upgrade.
	oldApply(str("k", clock(10), "v10"))
	// The first new worker starts (a target with keys: legacy read-through
	// on) and applies the delete of k.
	s := newSink(t, r.Client, Options{Addr: r.Addr, Concurrency: 1})
	applyAll(t, s, []pipeline.Event{del("k", clock(20))})
	// An old worker, not yet replaced, gets the partition and replays from
	// the committed offset: the upsert read before the delete.
	if n := oldApply(str("k", clock(15), "v15")); n != 0 {
		t.Errorf("an old worker applied an older upsert over the new worker's delete")
	}
	if r.Client.Exists(ctx, "k").Val() != 0 {
		t.Errorf("k = %q: a deleted key came back", r.Client.Get(ctx, "k").Val())
	}
}

// The other way round: an old worker writes a newer value after a new
// worker moved the key's version into its bucket; the partition comes
// back to a new worker, which replays its uncommitted records. The apply
// script reads the bucket first and looks at the legacy key only when
// the bucket has no entry, so the old worker's newer version is not seen
// and an older record overwrites it.
func TestRollingUpgradeNewWorkerAfterOldWorker(t *testing.T) {
	r := stack.NewRedis(t)
	ctx := context.Background()
	old := goredis.NewScript(oldApplyLua)
	oldApply := func(ev pipeline.Event) {
		t.Helper()
		ret := strconv.FormatInt((8 * 24 * time.Hour).Milliseconds(), 10)
		if err := old.Run(ctx, r.Client, []string{string(ev.Key), legacyKey("cutover:v:", ev.Key)},
			[]byte(ev.Version), "u", "string", "", ret, "", ev.Value.String).Err(); err != nil {
			t.Fatal(err)
		}
	}
	oldApply(str("k", clock(10), "v10"))
	s := newSink(t, r.Client, Options{Addr: r.Addr, Concurrency: 1})
	applyAll(t, s, []pipeline.Event{str("k", clock(20), "v20")})
	oldApply(str("k", clock(30), "v30"))
	res, err := s.Apply(ctx, []pipeline.Event{str("k", clock(25), "v25")})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome != pipeline.SkippedOlder || r.Client.Get(ctx, "k").Val() != "v30" {
		t.Errorf("a new worker's replay of v25 after an old worker wrote v30: %v, k = %q", res[0].Outcome, r.Client.Get(ctx, "k").Val())
	}
}
