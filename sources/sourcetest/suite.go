package sourcetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline"
)

// Subject is a source under test and the store it reads.
type Subject struct {
	// Put sets key to value in the store; Delete removes key.
	Put    func(t *testing.T, key, value string)
	Delete func(t *testing.T, key string)
	// Backfill returns a source that snapshots the store and returns once
	// the snapshot is durable; Replicate one that snapshots it (or
	// resumes) and follows its changes until its context ends. Both
	// publish to pub and save positions in ck. A backfill must publish in
	// batches of at most about 20 keys, for the crash case to stop it
	// halfway.
	Backfill  func(t *testing.T, pub pipeline.Publisher, ck checkpoint.Store) pipeline.Source
	Replicate func(t *testing.T, pub pipeline.Publisher, ck checkpoint.Store) pipeline.Source
	// Key returns the store key an event is about; Value the value an
	// upsert carries.
	Key   func(e pipeline.Event) string
	Value func(e pipeline.Event) string
	// Wait bounds every wait for a state; default 30s.
	Wait time.Duration
}

// Run runs the contract. Each case gets its subject from newSubject, over
// an empty store of its own.
func Run(t *testing.T, newSubject func(t *testing.T) *Subject) {
	cases := []struct {
		name string
		run  func(*testing.T, *Subject)
	}{
		{"BackfillCopiesEveryKey", backfillCopiesEveryKey},
		{"BackfillStoppedHalfwayResumesWithoutLoss", backfillStoppedHalfway},
		{"ReplicateRestartedSeesChangesMadeWhileStopped", replicateRestarted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSubject(t)
			if s.Wait <= 0 {
				s.Wait = 30 * time.Second
			}
			c.run(t, s)
		})
	}
}

// store is the suite's record of what the store holds.
type store struct {
	s    *Subject
	keys map[string]string
}

func (st *store) put(t *testing.T, k, v string) { st.s.Put(t, k, v); st.keys[k] = v }
func (st *store) del(t *testing.T, k string)    { st.s.Delete(t, k); delete(st.keys, k) }

func fill(t *testing.T, s *Subject, prefix string, n int) *store {
	st := &store{s: s, keys: map[string]string{}}
	for i := range n {
		st.put(t, fmt.Sprintf("%s%04d", prefix, i), fmt.Sprintf("v%d", i))
	}
	return st
}

func backfillCopiesEveryKey(t *testing.T, s *Subject) {
	st := fill(t, s, "a", 200)
	pub := newLog()
	run(t, s, s.Backfill(t, pub, checkpoint.NewMemoryStore()))
	if d := targetAfter(s, pub.all()).diff(st.keys); d != "" {
		t.Fatalf("after a backfill the target differs from the store: %s", d)
	}
}

// backfillStoppedHalfway stops a backfill while the log holds events it
// never acknowledged, then runs it again on the same checkpoints. Every
// event of the first run is applied, acknowledged or not (a crash may
// lose the unacknowledged ones or not): the target must still end equal
// to the store, and nothing the first run left unacknowledged may be
// missing after the second.
func backfillStoppedHalfway(t *testing.T, s *Subject) {
	st := fill(t, s, "b", 400)
	ck := checkpoint.NewMemoryStore()
	first := holding(3, 3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Backfill(t, first, ck).Run(ctx) }()
	select {
	case <-first.stalled:
	case err := <-done:
		cancel()
		t.Fatalf("the backfill ended (%v) before the log stalled: publish the snapshot in batches of about 20 keys", err)
	case <-time.After(s.Wait):
		cancel()
		t.Fatal("the log never stalled")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("the backfill stopped by its context returned %v", err)
		}
	case <-time.After(s.Wait):
		t.Fatal("the backfill did not return after its context ended")
	}

	// No change while stopped: a resumed backfill does not re-read the
	// keys it copied before (replicate's heal does, see
	// replicateRestarted).

	second := newLog()
	run(t, s, s.Backfill(t, second, ck))
	if d := targetAfter(s, first.all(), second.all()).diff(st.keys); d != "" {
		t.Fatalf("a backfill stopped halfway and run again left the target different from the store: %s", d)
	}
	// Counted are the snapshot's reads: a stream may hand over again the
	// changes it had not confirmed.
	if n := len(snapshotReads(second.all())); n >= len(st.keys) {
		t.Errorf("the second run's snapshot read %d keys of %d: it started over instead of resuming from its saved position", n, len(st.keys))
	}
	// The unacknowledged events alone (a crash that lost them) must not
	// matter either.
	if d := targetAfter(s, first.all()[:first.durable], second.all()).diff(st.keys); d != "" {
		t.Fatalf("without the first run's unacknowledged events the target differs from the store: %s", d)
	}
}

// replicateRestarted runs replicate until it has copied the store and a
// live change, stops it, changes the store, and runs it again on the same
// checkpoints: the target must end equal to the store.
func replicateRestarted(t *testing.T, s *Subject) {
	st := fill(t, s, "c", 100)
	ck := checkpoint.NewMemoryStore()
	first := newLog()
	m := newTarget(s)
	runUntil(t, s, s.Replicate(t, first, ck), first, m, func() {
		st.put(t, "c0000", "live")
		st.del(t, "c0001")
	}, st.keys)

	st.put(t, "c0003", "while stopped")
	st.del(t, "c0004")
	st.put(t, "c5000", "new while stopped")

	second := newLog()
	runUntil(t, s, s.Replicate(t, second, ck), second, m, func() {
		st.put(t, "c0005", "live again")
	}, st.keys)
}

// runUntil runs src, makes the changes of live once it has published its
// first event, and stops it once the model, fed with what it published,
// equals want.
func runUntil(t *testing.T, s *Subject, src pipeline.Source, pub *log, m *target, live func(), want map[string]string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	deadline := time.After(s.Wait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	applied, changed := 0, false
	for {
		events := pub.all()
		m.apply(events[applied:])
		applied = len(events)
		if !changed && applied > 0 {
			live()
			changed = true
		} else if changed && m.diff(want) == "" {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("replicate stopped by itself: %v", err)
		case <-deadline:
			t.Fatalf("replicate did not bring the target to the store's state within %s: %s", s.Wait, m.diff(want))
		case <-tick.C:
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("replicate returned %v when stopped", err)
	}
}

func run(t *testing.T, s *Subject, src pipeline.Source) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.Wait)
	defer cancel()
	if err := src.Run(ctx); err != nil {
		t.Fatalf("backfill: %v", err)
	}
}

func snapshotReads(events []pipeline.Event) []pipeline.Event {
	var out []pipeline.Event
	for _, e := range events {
		if e.Op == pipeline.OpUpsert && e.Origin == pipeline.OriginSnapshot {
			out = append(out, e)
		}
	}
	return out
}
