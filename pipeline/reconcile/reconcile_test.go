package reconcile

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cutover/cutover/pipeline"
)

type pages []pipeline.Batch

func (p *pages) Next(context.Context) (pipeline.Batch, bool, error) {
	b := (*p)[0]
	*p = (*p)[1:]
	return b, len(*p) == 0, nil
}

type target map[string]Found

func (t target) Lookup(_ context.Context, keys [][]byte) (map[string]Found, error) {
	out := map[string]Found{}
	for _, k := range keys {
		if string(k) == "unaddressable" {
			continue
		}
		out[string(k)] = t[string(k)]
	}
	return out, nil
}

func str(s string) pipeline.Value {
	return pipeline.Value{Type: pipeline.TypeString, String: []byte(s)}
}

func ev(key string, v pipeline.Value, exp time.Time) pipeline.Event {
	return pipeline.Event{Key: []byte(key), Op: pipeline.OpUpsert, Origin: pipeline.OriginRepair, Value: v, ExpireAt: exp}
}

func TestRunFindsEveryKind(t *testing.T) {
	exp := time.Unix(2_000_000_000, 0)
	src := pages{
		{Events: []pipeline.Event{ev("equal", str("a"), time.Time{}), ev("missing", str("a"), time.Time{}), ev("changed", str("a"), time.Time{})}},
		{Events: []pipeline.Event{ev("ttl", str("a"), exp), ev("ttl-ok", str("a"), exp.Add(1500*time.Millisecond)), ev("unreadable", str("a"), time.Time{}),
			ev("unaddressable", str("a"), time.Time{}), ev("wrong-type", str("a"), time.Time{})},
			Rejects: []pipeline.Reject{{Key: []byte("huge"), Err: errors.New("too big")}}},
	}
	tgt := target{
		"equal":      {Exists: true, Value: str("a")},
		"changed":    {Exists: true, Value: str("b")},
		"ttl":        {Exists: true, Value: str("a"), ExpireAt: exp.Add(time.Hour)},
		"ttl-ok":     {Exists: true, Value: str("a"), ExpireAt: exp},
		"unreadable": {Exists: true, Err: errors.New("not our mapping")},
		"wrong-type": {Exists: true, Value: pipeline.Value{Type: pipeline.TypeList, List: [][]byte{[]byte("a")}}},
	}
	rep, err := Run(context.Background(), &src, tgt, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[Kind]int64{Missing: 1, Different: 2, TTLDifferent: 1, Unreadable: 1, Unaddressable: 1, NotComparable: 1}
	for k, n := range want {
		if rep.Counts[k] != n {
			t.Errorf("%s = %d, want %d (samples %v)", k, rep.Counts[k], n, rep.Samples[k])
		}
	}
	if rep.Compared != 8 || rep.Equal != 2 || rep.Differences() != 6 {
		t.Fatalf("compared %d equal %d differences %d", rep.Compared, rep.Equal, rep.Differences())
	}
	if s := rep.Samples[Missing]; len(s) != 1 || s[0].Key != "missing" {
		t.Fatalf("missing samples %v", s)
	}
}

// rereadable is a source whose keys can be read again: state holds the
// source's current values (absent: deleted).
type rereadable struct {
	pages
	state map[string]pipeline.Event
}

func (s *rereadable) Read(_ context.Context, keys [][]byte) (pipeline.Batch, error) {
	var b pipeline.Batch
	for _, k := range keys {
		if e, ok := s.state[string(k)]; ok {
			b.Events = append(b.Events, e)
		}
	}
	return b, nil
}

func (s *rereadable) Exists(_ context.Context, keys [][]byte) (map[string]bool, error) {
	out := map[string]bool{}
	for _, k := range keys {
		_, out[string(k)] = s.state[string(k)]
	}
	return out, nil
}

type listing struct{ target }

func (t listing) ListKeys(_ context.Context, fn func([][]byte) error) error {
	var keys [][]byte
	for k, f := range t.target {
		if f.Exists {
			keys = append(keys, []byte(k))
		}
	}
	return fn(keys)
}

// applier applies repairs to the target map, as the pipeline would.
type applier struct {
	tgt    target
	events []pipeline.Event
}

func (a *applier) Repair(_ context.Context, events []pipeline.Event) error {
	a.events = append(a.events, events...)
	return nil
}

func (a *applier) Wait(context.Context) error {
	for _, e := range a.events {
		cur := a.tgt[string(e.Key)]
		if !e.Version.Newer(cur.Version) {
			continue
		}
		a.tgt[string(e.Key)] = Found{Exists: e.Op == pipeline.OpUpsert, Value: e.Value, ExpireAt: e.ExpireAt, Version: e.Version}
	}
	return nil
}

func TestRecheckClearsChangesInFlightAndRepairFixesTheRest(t *testing.T) {
	v := func(n uint64) pipeline.Version { return pipeline.ClockVersion(0, n, true) }
	at := func(key, val string, n uint64) pipeline.Event {
		e := ev(key, str(val), time.Time{})
		e.Version = v(n)
		return e
	}
	src := &rereadable{
		pages: pages{{Events: []pipeline.Event{at("same", "a", 1), at("in-flight", "old", 1), at("missing", "a", 1), at("changed", "a", 1)}}},
		state: map[string]pipeline.Event{"same": at("same", "a", 1), "in-flight": at("in-flight", "new", 5),
			"missing": at("missing", "a", 1), "changed": at("changed", "a", 1)},
	}
	tgt := target{
		"same":      {Exists: true, Value: str("a"), Version: v(1)},
		"in-flight": {Exists: true, Value: str("new"), Version: v(5)}, // the change landed meanwhile
		"changed":   {Exists: true, Value: str("drift"), Version: v(9)},
		"extra":     {Exists: true, Value: str("x"), Version: v(3)},
	}
	fix := &applier{tgt: tgt}
	rep, err := Run(context.Background(), src, listing{tgt}, Options{RecheckDelay: time.Millisecond, Repair: fix, DeleteExtra: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cleared != 1 || rep.Counts[Missing] != 1 || rep.Counts[Different] != 1 || rep.Counts[Extra] != 1 {
		t.Fatalf("cleared %d counts %v", rep.Cleared, rep.Counts)
	}
	if rep.Repaired != 3 || rep.Remaining != 0 || rep.Unresolved() != 0 {
		t.Fatalf("repaired %d remaining %d unresolved %d: %v", rep.Repaired, rep.Remaining, rep.Unresolved(), rep.RemainingSamples)
	}
	if f := tgt["changed"]; string(f.Value.String) != "a" || !f.Version.Newer(v(9)) {
		t.Fatalf("changed not repaired above the target's version: %+v", f)
	}
	if tgt["extra"].Exists {
		t.Fatal("extra key not deleted")
	}
}

func TestUpperBound95(t *testing.T) {
	if got := UpperBound95(3000, 0); got != 0.001 {
		t.Fatalf("rule of three: %v", got)
	}
	if got := UpperBound95(1000, 10); got < 0.01 || got > 0.02 {
		t.Fatalf("wilson bound for 10/1000: %v", got)
	}
}

// heldRepairer is a Repairer whose events stay in flight after Repair
// returns, as a Kafka producer's buffered records do: each fails if the
// context it was published under ended before Wait.
type heldRepairer struct {
	applier
	ctxs []context.Context
}

func (h *heldRepairer) Repair(ctx context.Context, events []pipeline.Event) error {
	h.ctxs = append(h.ctxs, ctx)
	return h.applier.Repair(ctx, events)
}

func (h *heldRepairer) Wait(ctx context.Context) error {
	for _, c := range h.ctxs {
		if c.Err() != nil {
			return fmt.Errorf("a repair was abandoned before Wait: its context ended: %w", c.Err())
		}
	}
	return h.applier.Wait(ctx)
}

// TestRepairsPublishedDuringTheWalkOutliveIt: a re-check that runs while
// the walk is still going (Pending is full) publishes its repairs. They
// were published under the walk's own context, which ends with the walk,
// and the Kafka producer fails a record still buffered when its context
// ends: `reconcile --repair` stopped with "publish repairs: ... context
// canceled" once more keys differed than Pending holds.
func TestRepairsPublishedDuringTheWalkOutliveIt(t *testing.T) {
	v := pipeline.ClockVersion(0, 5, true)
	at := func(key string) pipeline.Event {
		e := ev(key, str("a"), time.Time{})
		e.Version = v
		return e
	}
	src := &rereadable{
		pages: pages{{Events: []pipeline.Event{at("k1"), at("k2")}}, {Events: []pipeline.Event{at("k3")}}},
		state: map[string]pipeline.Event{"k1": at("k1"), "k2": at("k2"), "k3": at("k3")},
	}
	tgt := target{}
	fix := &heldRepairer{applier: applier{tgt: tgt}}
	rep, err := Run(context.Background(), src, listing{tgt}, Options{RecheckDelay: time.Millisecond, Pending: 1, Repair: fix})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Repaired != 3 || rep.Unresolved() != 0 || len(fix.ctxs) < 2 {
		t.Fatalf("repaired %d in %d calls, unresolved %d", rep.Repaired, len(fix.ctxs), rep.Unresolved())
	}
}

// TestExpiredSourceItemIsGone: DynamoDB deletes an expired item when its
// TTL process gets to it, days later at worst, while a Redis target drops
// the key at once. Reconcile used to report such an item as missing in the
// target (the workflow checker found it on every DynamoDB → Redis run with
// TTLs). An item whose expiry has come is gone on both sides.
func TestExpiredSourceItemIsGone(t *testing.T) {
	past := time.Now().Add(-time.Minute)
	src := pages{{Events: []pipeline.Event{
		ev("expired-gone", str("a"), past),
		ev("expired-both", str("a"), past),
		ev("expired-kept", str("a"), past),
	}}}
	tgt := target{
		"expired-both": {Exists: true, Value: str("a"), ExpireAt: past},
		"expired-kept": {Exists: true, Value: str("a")}, // lost its expiry: a real difference
	}
	rep, err := Run(context.Background(), &src, tgt, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Equal != 2 || rep.Counts[Extra] != 1 || rep.Differences() != 1 {
		t.Errorf("equal %d, counts %v: want the two expired keys equal and the one kept without expiry extra", rep.Equal, rep.Counts)
	}
}

// TestExpiredTargetItemIsNotExtra: a target item whose expiry has come is
// gone, even while DynamoDB's TTL has not removed it yet; one whose
// source key is gone and that does not expire is extra. The chaos checker
// found the first reported as extra after a Redis key expired.
func TestExpiredTargetItemIsNotExtra(t *testing.T) {
	past := time.Now().Add(-time.Minute)
	src := &rereadable{
		pages: pages{{Events: []pipeline.Event{ev("kept", str("a"), time.Time{})}}},
		state: map[string]pipeline.Event{"kept": ev("kept", str("a"), time.Time{})},
	}
	tgt := target{
		"kept":          {Exists: true, Value: str("a")},
		"expired-extra": {Exists: true, Value: str("x"), ExpireAt: past},
		"live-extra":    {Exists: true, Value: str("x")},
	}
	rep, err := Run(context.Background(), src, listing{tgt}, Options{RecheckDelay: time.Millisecond, DeleteExtra: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts[Extra] != 1 || len(rep.Samples[Extra]) != 1 || rep.Samples[Extra][0].Key != "live-extra" {
		t.Fatalf("extra %d, samples %v: want only live-extra", rep.Counts[Extra], rep.Samples[Extra])
	}
}
