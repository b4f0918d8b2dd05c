package sinktest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/reconcile"
)

// Target is a sink under test, with a way to read back what it wrote.
type Target interface {
	pipeline.Sink
	// Read returns what the store holds for key; Exists is false for an
	// absent or deleted key.
	Read(ctx context.Context, key []byte) (reconcile.Found, error)
}

// Faults is implemented by a Target whose store can be made to refuse
// calls, to check that the sink retries what its store refuses — until
// it is written, never skipping it. A Target without it skips those
// cases, saying so.
type Faults interface {
	// Throttle makes the store refuse its next n writes as over its
	// capacity (DynamoDB: ProvisionedThroughputExceededException).
	Throttle(n int)
	// Partial makes the store answer only part of its next n batch calls,
	// as DynamoDB answers with UnprocessedItems or UnprocessedKeys; a
	// store written one item per call refuses every other write instead.
	Partial(n int)
}

// Caps says what a sink supports beyond the common contract.
type Caps struct {
	// Chunks: values in pieces are assembled (otherwise they must be
	// Rejected).
	Chunks bool
	// TTLPrecision is how precisely an expiry is kept.
	TTLPrecision time.Duration
	// EmptyKey: the empty key (Redis accepts SET "" v) is applied like any
	// other. A target that cannot hold it (a DynamoDB key attribute cannot
	// be empty) must reject it as pipeline.ErrUnmappable, and only it.
	EmptyKey bool
}

func v(n uint64) pipeline.Version { return pipeline.ClockVersion(0, n, false) }

func upsert(key string, ver uint64, val pipeline.Value) pipeline.Event {
	return pipeline.Event{Key: []byte(key), Op: pipeline.OpUpsert, Origin: pipeline.OriginLive, Version: v(ver), Value: val}
}

func del(key string, ver uint64) pipeline.Event {
	return pipeline.Event{Key: []byte(key), Op: pipeline.OpDelete, Origin: pipeline.OriginLive, Version: v(ver)}
}

// Str is a string value.
func Str(s string) pipeline.Value {
	return pipeline.Value{Type: pipeline.TypeString, String: []byte(s)}
}

// Run runs the contract. newTarget returns a sink writing to an empty
// store of its own.
func Run(t *testing.T, caps Caps, newTarget func(t *testing.T) Target) {
	ctx := context.Background()
	apply := func(t *testing.T, tg Target, events ...pipeline.Event) []pipeline.Outcome {
		t.Helper()
		res, err := tg.Apply(ctx, events)
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if len(res) != len(events) {
			t.Fatalf("Apply of %d events returned %d results", len(events), len(res))
		}
		out := make([]pipeline.Outcome, len(res))
		for i, r := range res {
			out[i] = r.Outcome
			if r.Outcome == pipeline.Rejected {
				t.Logf("rejected %q: %v", events[i].Key, r.Err)
			}
		}
		return out
	}
	read := func(t *testing.T, tg Target, key string) reconcile.Found {
		t.Helper()
		f, err := tg.Read(ctx, []byte(key))
		if err != nil {
			t.Fatalf("Read(%q): %v", key, err)
		}
		if f.Err != nil {
			t.Fatalf("Read(%q): %v", key, f.Err)
		}
		return f
	}
	expect := func(t *testing.T, tg Target, key string, want pipeline.Value) {
		t.Helper()
		f := read(t, tg, key)
		if !f.Exists {
			t.Fatalf("%q is absent, want %v", key, want)
		}
		if d := pipeline.Diff(&want, &f.Value); d != "" {
			t.Fatalf("%q: %s", key, d)
		}
	}
	absent := func(t *testing.T, tg Target, key string) {
		t.Helper()
		if f := read(t, tg, key); f.Exists {
			t.Fatalf("%q exists (%v), want it absent", key, f.Value)
		}
	}
	// deleteStays deletes key at version at and checks that it is gone and
	// that an upsert at the older version stale leaves it gone.
	deleteStays := func(t *testing.T, tg Target, key string, at, stale uint64) {
		t.Helper()
		if got := apply(t, tg, del(key, at)); got[0] != pipeline.Applied {
			t.Fatalf("delete of %q: %v", key, got)
		}
		absent(t, tg, key)
		if got := apply(t, tg, upsert(key, stale, Str("stale"))); got[0] != pipeline.SkippedOlder {
			t.Fatalf("stale upsert of %q after its delete: %v, want skipped-older", key, got)
		}
		absent(t, tg, key)
	}

	t.Run("apply twice changes nothing", func(t *testing.T) {
		tg := newTarget(t)
		e := upsert("k", 10, Str("one"))
		if got := apply(t, tg, e); got[0] != pipeline.Applied {
			t.Fatalf("first apply: %v", got)
		}
		if got := apply(t, tg, e); got[0] != pipeline.SkippedOlder {
			t.Fatalf("second apply of the same event: %v, want skipped-older", got)
		}
		expect(t, tg, "k", Str("one"))
	})

	t.Run("older after newer is skipped", func(t *testing.T) {
		tg := newTarget(t)
		apply(t, tg, upsert("k", 20, Str("new")))
		if got := apply(t, tg, upsert("k", 10, Str("old"))); got[0] != pipeline.SkippedOlder {
			t.Fatalf("older event: %v, want skipped-older", got)
		}
		expect(t, tg, "k", Str("new"))
	})

	t.Run("an upsert whose expiry has passed leaves the key gone", func(t *testing.T) {
		// A replay, or a sink far behind, carries values that expired
		// meanwhile: they must not come back, and must still refuse an
		// older event of the key.
		tg := newTarget(t)
		e := upsert("k", 20, Str("expired"))
		e.ExpireAt = time.Now().Add(-time.Minute)
		apply(t, tg, e)
		absent(t, tg, "k")
		if got := apply(t, tg, upsert("k", 10, Str("older"))); got[0] != pipeline.SkippedOlder {
			t.Fatalf("older event after an expired one: %v, want skipped-older", got)
		}
		absent(t, tg, "k")
	})

	t.Run("a deleted key stays deleted", func(t *testing.T) {
		tg := newTarget(t)
		apply(t, tg, upsert("k", 10, Str("v")))
		deleteStays(t, tg, "k", 20, 15)
		// A delete for a key the target never had still leaves a tombstone.
		apply(t, tg, del("never", 30))
		apply(t, tg, upsert("never", 25, Str("stale")))
		absent(t, tg, "never")
		// A newer write brings a deleted key back, as the source did.
		apply(t, tg, upsert("k", 30, Str("reborn")))
		expect(t, tg, "k", Str("reborn"))
	})

	t.Run("in one batch the newest version wins whatever the order", func(t *testing.T) {
		tg := newTarget(t)
		got := apply(t, tg, upsert("k", 30, Str("c")), upsert("k", 10, Str("a")), upsert("k", 20, Str("b")), del("d", 5), upsert("d", 6, Str("x")))
		applied := 0
		for _, o := range got {
			if o == pipeline.Applied {
				applied++
			}
		}
		if applied != 2 {
			t.Fatalf("outcomes %v: want exactly the newest of each key applied", got)
		}
		expect(t, tg, "k", Str("c"))
		expect(t, tg, "d", Str("x"))
	})

	t.Run("every type and its expiry", func(t *testing.T) {
		tg := newTarget(t)
		exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
		vals := map[string]pipeline.Value{
			"s": Str("\x00\xff bytes"),
			"h": {Type: pipeline.TypeHash, Hash: []pipeline.Field{{Name: []byte("f"), Value: []byte("1")}, {Name: []byte("g"), Value: []byte{}}}},
			"l": {Type: pipeline.TypeList, List: [][]byte{[]byte("b"), []byte("a"), []byte("b")}},
			"t": {Type: pipeline.TypeSet, Set: [][]byte{[]byte("x"), []byte("y")}},
			"z": {Type: pipeline.TypeZSet, ZSet: []pipeline.ScoredMember{{Member: []byte("lo"), Score: math.Inf(-1)}, {Member: []byte("mid"), Score: 0.5}, {Member: []byte("hi"), Score: 1e300}}},
		}
		var evs []pipeline.Event
		for k, val := range vals {
			e := upsert(k, 10, val)
			e.ExpireAt = exp
			evs = append(evs, e)
		}
		apply(t, tg, evs...)
		for k, val := range vals {
			expect(t, tg, k, val)
			f := read(t, tg, k)
			if d := f.ExpireAt.Sub(exp); d < -caps.TTLPrecision || d > caps.TTLPrecision {
				t.Fatalf("%q expires at %v, want %v ± %v", k, f.ExpireAt, exp, caps.TTLPrecision)
			}
		}
		// A newer value without an expiry removes the expiry.
		apply(t, tg, upsert("s", 11, Str("forever")))
		if f := read(t, tg, "s"); !f.ExpireAt.IsZero() {
			t.Fatalf("expiry %v kept after a write without one", f.ExpireAt)
		}
	})

	t.Run("truncate sweeps older keys of its partition and scope only", func(t *testing.T) {
		tg := newTarget(t)
		const partitions = 3
		var evs []pipeline.Event
		for i := range 30 {
			evs = append(evs, upsert(fmt.Sprintf("old:%d", i), 10, Str("x")), upsert(fmt.Sprintf("new:%d", i), 30, Str("x")))
		}
		// The scope's filter is only tested where a truncate runs: the
		// excluded keys are picked in the partitions that are swept (a key
		// of partition 1 would survive for want of its truncate, filter or
		// not).
		var keep []string
		for i := 0; len(keep) < 2 && i < 1000; i++ {
			key := fmt.Sprintf("keep:%d", i)
			if pipeline.PartitionOf([]byte(key), partitions) != 1 {
				keep = append(keep, key)
				evs = append(evs, upsert(key, 10, Str("x")))
			}
		}
		if len(keep) < 2 {
			t.Fatalf("found %d keys outside partition 1, want 2", len(keep))
		}
		apply(t, tg, evs...)
		for p := range int32(partitions) {
			tr := pipeline.Event{Op: pipeline.OpTruncate, Origin: pipeline.OriginLive, Version: v(20),
				Scope: &pipeline.Scope{Partition: p, Partitions: partitions, Filter: pipeline.KeyFilter{Exclude: []string{"keep:*"}}}}
			if p == 1 {
				continue // partition 1's truncate has not arrived yet
			}
			if got := apply(t, tg, tr); got[0] != pipeline.Applied {
				t.Fatalf("truncate: %v", got)
			}
		}
		for i := range 30 {
			key := fmt.Sprintf("old:%d", i)
			f := read(t, tg, key)
			inSwept := pipeline.PartitionOf([]byte(key), partitions) != 1
			if f.Exists == inSwept {
				t.Fatalf("%q (partition %d) exists=%v after truncating partitions 0 and 2", key, pipeline.PartitionOf([]byte(key), partitions), f.Exists)
			}
			expect(t, tg, fmt.Sprintf("new:%d", i), Str("x"))
		}
		for _, key := range keep {
			expect(t, tg, key, Str("x"))
		}
		// A swept key is tombstoned: an older read cannot bring it back.
		for i := range 30 {
			key := fmt.Sprintf("old:%d", i)
			if pipeline.PartitionOf([]byte(key), partitions) != 1 {
				apply(t, tg, upsert(key, 15, Str("late")))
				absent(t, tg, key)
				break
			}
		}
	})

	// Cutover once refused the empty key as an invalid event and stopped
	// the whole pipeline on it. It is a key: applied, versioned and
	// tombstoned like any other where the target can hold it, and
	// otherwise that one event is rejected while the rest of its batch is
	// applied.
	t.Run("the empty key", func(t *testing.T) {
		tg := newTarget(t)
		exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
		e := upsert("", 10, Str("the empty key's value"))
		e.ExpireAt = exp
		e.Key = []byte{}
		res, err := tg.Apply(ctx, []pipeline.Event{upsert("before", 10, Str("b")), e, upsert("after", 10, Str("a"))})
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
		if res[0].Outcome != pipeline.Applied || res[2].Outcome != pipeline.Applied {
			t.Fatalf("outcomes %v %v: the keys around the empty key must be applied", res[0].Outcome, res[2].Outcome)
		}
		expect(t, tg, "before", Str("b"))
		expect(t, tg, "after", Str("a"))
		if !caps.EmptyKey {
			if res[1].Outcome != pipeline.Rejected || !errors.Is(res[1].Err, pipeline.ErrUnmappable) {
				t.Fatalf("empty key: %v (%v), want rejected as unmappable", res[1].Outcome, res[1].Err)
			}
			return
		}
		if res[1].Outcome != pipeline.Applied {
			t.Fatalf("empty key: %v (%v), want applied", res[1].Outcome, res[1].Err)
		}
		expect(t, tg, "", Str("the empty key's value"))
		if f := read(t, tg, ""); f.ExpireAt.Sub(exp) < -caps.TTLPrecision || f.ExpireAt.Sub(exp) > caps.TTLPrecision {
			t.Fatalf("the empty key expires at %v, want %v", f.ExpireAt, exp)
		}
		if got := apply(t, tg, e); got[0] != pipeline.SkippedOlder {
			t.Fatalf("the same event again: %v, want skipped-older", got)
		}
		deleteStays(t, tg, "", 20, 15)
		expect(t, tg, "before", Str("b"))
	})

	faults := func(t *testing.T, tg Target) Faults {
		t.Helper()
		f, ok := tg.(Faults)
		if !ok {
			t.Skipf("the target (%T) cannot inject faults: implement sinktest.Faults", tg)
		}
		return f
	}

	t.Run("throttled then ok", func(t *testing.T) {
		tg := newTarget(t)
		faults(t, tg).Throttle(3)
		if got := apply(t, tg, upsert("k", 10, Str("v"))); got[0] != pipeline.Applied {
			t.Fatalf("a write throttled three times: %v, want applied once the store takes it", got)
		}
		expect(t, tg, "k", Str("v"))
		if got := apply(t, tg, upsert("k", 10, Str("v"))); got[0] != pipeline.SkippedOlder {
			t.Fatalf("the same event again: %v, want skipped-older", got)
		}
	})

	t.Run("a batch answered in part is retried until all of it is applied", func(t *testing.T) {
		tg := newTarget(t)
		f := faults(t, tg)
		var evs []pipeline.Event
		for i := range 10 {
			evs = append(evs, upsert(fmt.Sprint("k", i), 10, Str(fmt.Sprint("v", i))))
		}
		f.Partial(5)
		for i, o := range apply(t, tg, evs...) {
			if o != pipeline.Applied {
				t.Fatalf("%s: %v, want applied", evs[i].Key, o)
			}
		}
		f.Partial(3) // the reads too
		for i := range 10 {
			expect(t, tg, fmt.Sprint("k", i), Str(fmt.Sprint("v", i)))
		}
	})

	t.Run("chunks", func(t *testing.T) {
		tg := newTarget(t)
		piece := func(key string, ver uint64, idx int, offset int64, last bool, elems ...string) pipeline.Event {
			l := make([][]byte, len(elems))
			for i, e := range elems {
				l[i] = []byte(e)
			}
			e := upsert(key, ver, pipeline.Value{Type: pipeline.TypeList, List: l})
			e.Chunk = &pipeline.Chunk{Index: idx, Offset: offset, Last: last}
			return e
		}
		p0, p1, p2 := piece("big", 10, 0, 0, false, "a", "b"), piece("big", 10, 1, 2, false, "c"), piece("big", 10, 2, 3, true, "d", "e")
		got := apply(t, tg, p0, p1)
		if !caps.Chunks {
			for _, o := range got {
				if o != pipeline.Rejected {
					t.Fatalf("a sink without chunk support must reject pieces, got %v", got)
				}
			}
			return
		}
		apply(t, tg, p1) // a replayed piece is not added twice
		apply(t, tg, p2)
		list := func(elems ...string) pipeline.Value {
			l := make([][]byte, len(elems))
			for i, e := range elems {
				l[i] = []byte(e)
			}
			return pipeline.Value{Type: pipeline.TypeList, List: l}
		}
		expect(t, tg, "big", list("a", "b", "c", "d", "e"))
		// Replaying every piece changes nothing.
		apply(t, tg, p0, p1, p2)
		expect(t, tg, "big", list("a", "b", "c", "d", "e"))
		// A newer whole value between pieces wins; the old version's
		// remaining pieces are ignored.
		apply(t, tg, piece("big2", 10, 0, 0, false, "a"))
		apply(t, tg, upsert("big2", 20, list("new")))
		if got := apply(t, tg, piece("big2", 10, 1, 1, true, "b")); got[0] != pipeline.SkippedOlder {
			t.Fatalf("a piece of an older version: %v, want skipped-older", got)
		}
		expect(t, tg, "big2", list("new"))
	})
}
