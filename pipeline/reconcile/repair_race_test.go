package reconcile

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/pipeline"
)

// world is a source, a pipeline and a target in one, for the races of a
// repair: the source's keys change, the pipeline applies each change to
// the target as a live source would publish it, and a change can be made
// to land between the two reads of a re-check.
//
// dynamo picks the versions: false, a Redis source's — every read and
// every change is stamped with a clock that only moves on; true, a
// DynamoDB source's — reconcile's reads carry a snapshot row's version
// (sequence 1), changes come with stream sequence numbers that grow, and
// a key the table lacks has no event at all.
type world struct {
	mu     sync.Mutex
	dynamo bool
	clock  uint64   // Redis: the server's clock, in µs
	seq    *big.Int // DynamoDB: the stream's last sequence number
	src    map[string]pipeline.Value
	tgt    map[string]Found
	first  pipeline.Batch // the walk's single page

	// between runs once, right after the first store read made once
	// armed is set (by Options.Progress, after the first look).
	between func(w *world)
	armed   bool
	fired   bool

	repairs []pipeline.Event
}

func newWorld(dynamo bool) *world {
	// Stream sequence numbers of 21 digits and more, as DynamoDB's.
	seq, _ := new(big.Int).SetString("100000000000000000000", 10)
	return &world{dynamo: dynamo, clock: 1000, seq: seq, src: map[string]pipeline.Value{}, tgt: map[string]Found{}}
}

// changeVersion is the version of a change the source publishes now.
func (w *world) changeVersion() pipeline.Version {
	if w.dynamo {
		w.seq.Add(w.seq, big.NewInt(1))
		v, err := pipeline.SequenceVersion(0, w.seq.String())
		if err != nil {
			panic(err)
		}
		return v
	}
	w.clock++
	return pipeline.ClockVersion(0, w.clock, true)
}

// write changes key in the source (nil deletes it) and lets the pipeline
// apply the change to the target.
func (w *world) write(key string, v *pipeline.Value) {
	ver := w.changeVersion()
	if v == nil {
		delete(w.src, key)
		w.apply(pipeline.Event{Key: []byte(key), Op: pipeline.OpDelete, Version: ver})
		return
	}
	w.src[key] = *v
	w.apply(pipeline.Event{Key: []byte(key), Op: pipeline.OpUpsert, Value: *v, Version: ver})
}

// apply is the sink: an event newer than what the target holds replaces
// it; a delete leaves a tombstone (absent, with its version).
func (w *world) apply(e pipeline.Event) {
	cur := w.tgt[string(e.Key)]
	if !e.Version.Newer(cur.Version) {
		return
	}
	w.tgt[string(e.Key)] = Found{Exists: e.Op == pipeline.OpUpsert, Value: e.Value, Version: e.Version}
}

// touched is called after every store read of a re-check.
func (w *world) touched() {
	if w.armed && !w.fired && w.between != nil {
		w.fired = true
		w.between(w)
	}
}

// Next implements Source: one page, the source as it is when the walk
// starts.
func (w *world) Next(context.Context) (pipeline.Batch, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first, true, nil
}

// Read implements Reader, as the source's readers do: Redis stamps every
// read with its clock and reads a missing key as a delete; DynamoDB gives
// a row the snapshot's sequence 1 and a missing item no event.
func (w *world) Read(_ context.Context, keys [][]byte) (pipeline.Batch, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.touched()
	var b pipeline.Batch
	for _, k := range keys {
		v, ok := w.src[string(k)]
		var ver pipeline.Version
		if w.dynamo {
			if !ok {
				continue
			}
			ver, _ = pipeline.SequenceVersion(0, "1")
		} else {
			w.clock++
			ver = pipeline.ClockVersion(0, w.clock, true)
		}
		e := pipeline.Event{Key: k, Op: pipeline.OpDelete, Origin: pipeline.OriginRepair, Version: ver}
		if ok {
			e.Op, e.Value = pipeline.OpUpsert, v
		}
		b.Events = append(b.Events, e)
	}
	return b, nil
}

// Exists implements Checker.
func (w *world) Exists(_ context.Context, keys [][]byte) (map[string]bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]bool{}
	for _, k := range keys {
		_, out[string(k)] = w.src[string(k)]
	}
	return out, nil
}

// worldTarget is the world's target side.
type worldTarget struct{ *world }

// Lookup implements Target.
func (t worldTarget) Lookup(_ context.Context, keys [][]byte) (map[string]Found, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	defer t.touched()
	out := map[string]Found{}
	for _, k := range keys {
		out[string(k)] = t.tgt[string(k)]
	}
	return out, nil
}

// ListKeys implements KeyLister.
func (t worldTarget) ListKeys(_ context.Context, fn func([][]byte) error) error {
	t.mu.Lock()
	var keys [][]byte
	for k, f := range t.tgt {
		if f.Exists {
			keys = append(keys, []byte(k))
		}
	}
	t.mu.Unlock()
	return fn(keys)
}

// Repair implements Repairer: the repairs go through the sink like any
// change.
func (w *world) Repair(_ context.Context, events []pipeline.Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range events {
		w.repairs = append(w.repairs, e)
		w.apply(e)
	}
	return nil
}

// Wait implements Repairer.
func (w *world) Wait(context.Context) error { return nil }

// run reconciles the world with repairs; the first look sees the source
// as it is now.
func (w *world) run(t *testing.T, opts Options) Report {
	t.Helper()
	w.mu.Lock()
	w.first = pipeline.Batch{}
	for k, v := range w.src {
		w.first.Events = append(w.first.Events, pipeline.Event{Key: []byte(k), Op: pipeline.OpUpsert, Origin: pipeline.OriginRepair, Value: v})
	}
	w.mu.Unlock()
	opts.RecheckDelay, opts.Rechecks, opts.Repair = time.Millisecond, 1, w
	opts.Progress = func(Report) {
		w.mu.Lock()
		w.armed = true
		w.mu.Unlock()
	}
	rep, err := Run(context.Background(), w, worldTarget{w}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !w.fired {
		t.Fatal("the change meant to land between the two reads of the re-check never ran")
	}
	return rep
}

// checkConverged fails t unless the target holds exactly the source's
// keys and values: no key went back to an older value, none deleted in
// the source is present, none present in the source is gone.
func (w *world) checkConverged(t *testing.T) {
	t.Helper()
	for k, f := range w.tgt {
		v, ok := w.src[k]
		switch {
		case f.Exists && !ok:
			t.Errorf("%s: deleted in the source, present in the target as %q (repairs %s)", k, f.Value.String, w.describeRepairs())
		case !f.Exists && ok:
			t.Errorf("%s: %q in the source, gone from the target (repairs %s)", k, v.String, w.describeRepairs())
		case ok && pipeline.Diff(&v, &f.Value) != "":
			t.Errorf("%s: %q in the source, older %q in the target (repairs %s)", k, v.String, f.Value.String, w.describeRepairs())
		}
	}
	for k := range w.src {
		if _, ok := w.tgt[k]; !ok {
			t.Errorf("%s: never reached the target", k)
		}
	}
}

func (w *world) describeRepairs() string {
	s := ""
	for _, e := range w.repairs {
		s += fmt.Sprintf("[%s %s %q @%s] ", e.Key, e.Op, e.Value.String, e.Version)
	}
	return s
}

func strp(s string) *pipeline.Value {
	v := str(s)
	return &v
}

// Each test below makes a change land in the target between the two reads
// of a re-check. reconcile used to read the source first and the target
// second, and stamp a repair that was not newer than the target's version
// with that version's Next(): the change reached the target but not the
// source read, so the repair put the older state over the newer one.

// TestRepairDoesNotResurrectADeleteMadeDuringTheRecheck: a key missing in
// the target is deleted in the source while it is re-checked. The repair
// of "missing" used to carry the value read before the delete, stamped
// just newer than the delete's tombstone: the deleted key came back.
func TestRepairDoesNotResurrectADeleteMadeDuringTheRecheck(t *testing.T) {
	for _, dynamo := range []bool{false, true} {
		t.Run(map[bool]string{false: "redis", true: "dynamodb"}[dynamo], func(t *testing.T) {
			w := newWorld(dynamo)
			w.src["k"] = str("v1") // in the source; its event is still on its way
			w.between = func(w *world) { w.write("k", nil) }
			rep := w.run(t, Options{ClockReads: !dynamo})
			w.checkConverged(t)
			if f := w.tgt["k"]; f.Exists || len(f.Version) == 0 {
				t.Fatalf("the delete's tombstone did not stay: %+v", f)
			}
			if rep.Unresolved() != 0 {
				t.Fatalf("unresolved %d: %+v", rep.Unresolved(), rep)
			}
		})
	}
}

// TestDeleteExtraSparesAKeyRecreatedDuringTheRecheck: a key only in the
// target is re-created in the source while it is re-checked. --delete-extra
// used to delete it, stamped just newer than the re-created value, after
// the source read said it was absent.
func TestDeleteExtraSparesAKeyRecreatedDuringTheRecheck(t *testing.T) {
	for _, dynamo := range []bool{false, true} {
		t.Run(map[bool]string{false: "redis", true: "dynamodb"}[dynamo], func(t *testing.T) {
			w := newWorld(dynamo)
			w.tgt["k"] = Found{Exists: true, Value: str("old"), Version: w.changeVersion()} // deleted in the source since
			w.between = func(w *world) { w.write("k", strp("new")) }
			rep := w.run(t, Options{ClockReads: !dynamo, DeleteExtra: true})
			w.checkConverged(t)
			if f := w.tgt["k"]; !f.Exists || string(f.Value.String) != "new" {
				t.Fatalf("the re-created key is not in the target: %+v (repairs %s)", f, w.describeRepairs())
			}
			if rep.Unresolved() != 0 {
				t.Fatalf("unresolved %d: %+v", rep.Unresolved(), rep)
			}
		})
	}
}

// TestRepairOfASnapshotRowLosesToAStreamRecord: with a DynamoDB source
// every repair is stamped from the target's version (the read is a
// snapshot row, sequence 1). An item that differs is changed again while
// it is re-checked, and the stream record reaches the target at once; the
// repair carrying the value read before that change used to be stamped
// just newer than the stream record and win. Sequence numbers of other
// lengths (21 to 40 digits, magnitudes one byte longer than the target's)
// must not change that.
func TestRepairOfASnapshotRowLosesToAStreamRecord(t *testing.T) {
	for _, start := range []string{
		"100000000000000000000",                    // 21 digits
		"1208925819614629174706174",                // 2^80 - 2: the change's magnitude is a byte longer than the target's
		"340282366920938463463374607431768211454",  // 2^128 - 2: the same at 16 → 17 bytes
		"9999999999999999999999999999999999999990", // 40 digits
	} {
		t.Run(fmt.Sprint(start), func(t *testing.T) {
			w := newWorld(true)
			w.seq.SetString(start, 10)
			w.write("k", strp("a")) // in the target at a stream record's version
			w.src["k"] = str("b")   // changed since; that record is on its way
			w.between = func(w *world) { w.write("k", strp("c")) }
			rep := w.run(t, Options{})
			w.checkConverged(t)
			if rep.Remaining != 0 {
				t.Fatalf("remaining %d: %v", rep.Remaining, rep.RemainingSamples)
			}
		})
	}
}

// TestRepairOfAMissingItemLosesToALaterSnapshotRow: with a DynamoDB
// source, a repair of an item the target lacks used to carry the read's
// own version, a snapshot row's (sequence 1 of the epoch). A snapshot row
// of that epoch read later — carrying a change made before the stream
// position, so in no stream record — then tied with the repair, and the
// sink keeps the first of two equal versions: the later state was
// skipped for good. Stamped just above the target's (empty) version, the
// repair loses to every event the pipeline makes.
func TestRepairOfAMissingItemLosesToALaterSnapshotRow(t *testing.T) {
	w := newWorld(true)
	w.src["k"] = str("a") // the target lacks it
	w.between = func(*world) {}
	if rep := w.run(t, Options{}); rep.Repaired != 1 || rep.Remaining != 0 {
		t.Fatalf("repaired %d remaining %d: %v", rep.Repaired, rep.Remaining, rep.RemainingSamples)
	}
	// The item changes before the stream position of a snapshot that
	// starts now, and the snapshot's row reaches the sink.
	w.src["k"] = str("b")
	row, err := pipeline.SequenceVersion(0, "1")
	if err != nil {
		t.Fatal(err)
	}
	w.apply(pipeline.Event{Key: []byte("k"), Op: pipeline.OpUpsert, Origin: pipeline.OriginSnapshot, Value: str("b"), Version: row})
	w.checkConverged(t)
}

// TestRepairDeferredWhenTheSourceClockIsBehind: a Redis source whose read
// (made after the target lookup) is not newer than the target's version
// of the same epoch has a clock behind the one that stamped the target's
// version; a repair stamped above it could outrank changes it did not
// see, so none goes out and the key counts as unresolved.
func TestRepairDeferredWhenTheSourceClockIsBehind(t *testing.T) {
	w := newWorld(false)
	w.src["k"] = str("a")
	w.tgt["k"] = Found{Exists: true, Value: str("z"), Version: pipeline.ClockVersion(0, 1_000_000, true)}
	w.between = func(*world) {}
	rep := w.run(t, Options{ClockReads: true})
	if len(w.repairs) != 0 || rep.RepairDeferred != 1 || rep.Unresolved() != 1 || len(rep.RemainingSamples) != 1 {
		t.Fatalf("repairs %s, report %+v", w.describeRepairs(), rep)
	}
}

// TestRepairVersion pins the version rule on every kind of version: the
// repair beats the version the lookup saw, and loses to every version a
// source can give a later change (the target's version came from a read
// made before the repair's).
func TestRepairVersion(t *testing.T) {
	clock := func(epoch, micros uint64) pipeline.Version { return pipeline.ClockVersion(epoch, micros, true) }
	seq := func(epoch uint64, s string) pipeline.Version {
		v, err := pipeline.SequenceVersion(epoch, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tomb := clock(0, 50) // a delete's version: any version, kept by the tombstone
	cases := []struct {
		name       string
		read, held pipeline.Version
		clockReads bool
		later      []pipeline.Version // versions of changes after the read
		want       pipeline.Version   // nil: deferred
	}{
		{name: "redis read newer than the target", read: clock(0, 100), held: clock(0, 40), clockReads: true,
			later: []pipeline.Version{clock(0, 101), clock(1, 0)}, want: clock(0, 100)},
		{name: "redis read over a tombstone", read: clock(0, 100), held: tomb, clockReads: true,
			later: []pipeline.Version{clock(0, 101)}, want: clock(0, 100)},
		{name: "redis read over an earlier repair", read: clock(0, 100), held: clock(0, 40).Next(), clockReads: true,
			later: []pipeline.Version{clock(0, 101)}, want: clock(0, 100)},
		{name: "redis read of an older epoch than the target's", read: clock(0, 100), held: clock(1, 5), clockReads: true,
			later: []pipeline.Version{clock(1, 6), clock(2, 0)}, want: clock(1, 5).Next()},
		{name: "redis read behind the target's clock", read: clock(0, 100), held: clock(0, 200), clockReads: true, want: nil},
		{name: "redis read, target without a version", read: clock(0, 100), held: nil, clockReads: true,
			later: []pipeline.Version{clock(0, 101)}, want: clock(0, 100)},
		{name: "no read version (absent item), target without one", read: nil, held: nil,
			later: []pipeline.Version{seq(0, "1"), seq(0, "100000000000000000001")}, want: pipeline.Version{0}},
		{name: "snapshot row over a stream record", read: seq(0, "1"), held: seq(0, "100000000000000000001"),
			later: []pipeline.Version{seq(0, "100000000000000000002"), seq(0, "1000000000000000000000000000000000000000"), seq(1, "1")},
			want:  seq(0, "100000000000000000001").Next()},
		{name: "snapshot row over a 40-digit stream record", read: seq(0, "1"), held: seq(0, "9999999999999999999999999999999999999999"),
			later: []pipeline.Version{seq(0, "10000000000000000000000000000000000000000")},
			want:  seq(0, "9999999999999999999999999999999999999999").Next()},
		{name: "snapshot row over a snapshot row", read: seq(0, "1"), held: seq(0, "1"),
			later: []pipeline.Version{seq(0, "100000000000000000000")}, want: seq(0, "1").Next()},
		{name: "snapshot row over an earlier repair", read: seq(0, "1"), held: seq(0, "1").Next(),
			later: []pipeline.Version{seq(0, "100000000000000000000")}, want: seq(0, "1").Next().Next()},
		{name: "snapshot row over a stream tombstone", read: nil, held: seq(0, "200000000000000000000"),
			later: []pipeline.Version{seq(0, "200000000000000000001")}, want: seq(0, "200000000000000000000").Next()},
		{name: "snapshot row of a new epoch over an old stream record", read: seq(2, "1"), held: seq(1, "300000000000000000000"),
			later: []pipeline.Version{seq(1, "300000000000000000001"), seq(2, "1"), seq(2, "100000000000000000000")},
			want:  seq(1, "300000000000000000000").Next()},
		{name: "snapshot row over the truncate of a re-scan", read: seq(2, "1"), held: seq(2, "0"),
			later: []pipeline.Version{seq(2, "1"), seq(2, "100000000000000000000")}, want: seq(2, "0").Next()},
		{name: "snapshot row of an item the target lacks", read: seq(0, "1"), held: nil,
			later: []pipeline.Version{seq(0, "1"), seq(0, "100000000000000000000")}, want: pipeline.Version{0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := repairVersion(c.read, c.held, c.clockReads)
			if c.want == nil {
				if ok {
					t.Fatalf("stamped %s, want the key deferred", got)
				}
				return
			}
			if !ok || got.Compare(c.want) != 0 {
				t.Fatalf("got %s (ok %v), want %s", got, ok, c.want)
			}
			if !got.Newer(c.held) {
				t.Fatalf("%s does not beat the target's %s", got, c.held)
			}
			for _, l := range c.later {
				if !l.Newer(got) {
					t.Fatalf("a later change at %s does not beat the repair at %s", l, got)
				}
			}
			// A stale lookup (an older version than the target holds)
			// only makes the repair smaller: it can lose, never win.
			if len(c.held) > 0 {
				stale := c.held[:len(c.held)-1]
				if s, ok := repairVersion(c.read, stale, c.clockReads); ok && s.Newer(got) {
					t.Fatalf("a stale lookup (%s) stamps %s, above %s", pipeline.Version(stale), s, got)
				}
			}
		})
	}
}
