package kafka

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

// These tests pin the worker's parallel apply: keys in parallel, each
// key in order, and commits that never pass a record still in flight.

// gatedSink applies events to a versioned map after a random pause
// between maxPause/2 and maxPause (the round trip of a remote target);
// events of keys in hold wait until their gate is opened.
type gatedSink struct {
	maxPause time.Duration

	mu       sync.Mutex
	store    map[string]pipeline.Event
	seen     map[string][]uint64 // per key, the versions applied, in order
	inFlight int
	peak     int
	hold     map[string]chan struct{}
}

func newGatedSink(maxPause time.Duration, held ...string) *gatedSink {
	s := &gatedSink{maxPause: maxPause, store: map[string]pipeline.Event{}, seen: map[string][]uint64{},
		hold: map[string]chan struct{}{}}
	for _, k := range held {
		s.hold[k] = make(chan struct{})
	}
	return s
}

func (s *gatedSink) Apply(ctx context.Context, events []pipeline.Event) ([]pipeline.Result, error) {
	s.mu.Lock()
	s.inFlight += len(events)
	s.peak = max(s.peak, s.inFlight)
	var gates []chan struct{}
	for _, e := range events {
		if g := s.hold[string(e.Key)]; g != nil {
			gates = append(gates, g)
		}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight -= len(events)
		s.mu.Unlock()
	}()
	for _, g := range gates {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-g:
		}
	}
	if s.maxPause > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(s.maxPause/2 + rand.N(s.maxPause/2)):
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]pipeline.Result, len(events))
	for i, e := range events {
		k := string(e.Key)
		s.seen[k] = append(s.seen[k], e.Version.ClockMicros())
		out[i] = applyVersioned(s.store, e)
	}
	return out, nil
}

func (s *gatedSink) release(key string) { close(s.hold[key]) }

// produceEvents publishes events in order and returns each one's record.
func produceEvents(t *testing.T, cfg Config, events []pipeline.Event) []*kgo.Record {
	t.Helper()
	cl := mustConnect(t, cfg)
	recs := make([]*kgo.Record, len(events))
	for i := range events {
		b, err := pipeline.Encode(nil, &events[i])
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = &kgo.Record{Topic: "events", Key: events[i].Key, Value: b}
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// produceKeys publishes one event of each of n keys.
func produceKeys(t *testing.T, cfg Config, n int) []*kgo.Record {
	t.Helper()
	events := make([]pipeline.Event, n)
	for i := range events {
		events[i] = stringEvent(fmt.Sprint("k", i), 1, "v")
	}
	return produceEvents(t, cfg, events)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEachKeyInOrderWithHundredsInFlight(t *testing.T) {
	t.Parallel()
	cfg := fakeCluster(t, "events", "events.dlq")
	const keys, versions = 300, 10
	var events []pipeline.Event
	for v := range versions {
		for k := range keys {
			events = append(events, stringEvent(fmt.Sprint("k", k), uint64(v+1), fmt.Sprint(v)))
		}
	}
	produceEvents(t, cfg, events)
	sink := newGatedSink(5 * time.Millisecond)
	opts := WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq", Concurrency: 128, MaxBatch: 4}
	w, stop := runWorker(t, cfg, opts, sink)
	waitUntil(t, "every event is applied", func() bool { st := w.Stats(); return st.Applied+st.SkippedOlder == keys*versions })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for k, seen := range sink.seen {
		for i := 1; i < len(seen); i++ {
			if seen[i] <= seen[i-1] {
				t.Fatalf("key %s applied versions %v: out of order", k, seen)
			}
		}
		if len(seen) != versions {
			t.Fatalf("key %s applied %d versions, want %d", k, len(seen), versions)
		}
	}
	// Hundreds of events in flight at once (128 calls of up to 4): one
	// call at a time would leave at most 4.
	if sink.peak < 100 {
		t.Fatalf("at most %d events were in flight at once, want hundreds", sink.peak)
	}
}

// A key that cannot be written for a while holds up only itself (with
// calls of one event, as a DynamoDB target makes them): every other key
// is applied and committed, and its own partition commits up
// to the record before it, never past it — also when the worker stops.
func TestAStuckKeyNeitherBlocksOthersNorIsCommittedPast(t *testing.T) {
	t.Parallel()
	cfg := fakeCluster(t, "events", "events.dlq")
	recs := produceKeys(t, cfg, 200)
	stuck := recs[100]
	sink := newGatedSink(0, string(stuck.Key))
	opts := WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq", MaxBatch: 1}
	w, stop := runWorker(t, cfg, opts, sink)

	pcl := mustConnect(t, cfg)
	ends, err := EndOffsets(ctxT(t), pcl, "events")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	for p, end := range ends {
		want[p] = end
	}
	want[stuck.Partition] = stuck.Offset
	waitUntil(t, "every other key is applied and committed", func() bool {
		return w.Stats().Applied == 199 && w.Progress().WaitFor(expired(), want, nil) == nil
	})
	if got := w.Progress().Committed()[stuck.Partition]; got != stuck.Offset {
		t.Fatalf("partition %d committed to %d, want %d: the offset of the record still in flight", stuck.Partition, got, stuck.Offset)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	committed, err := CommittedOffsets(ctxT(t), pcl, "g", "events")
	if err != nil {
		t.Fatal(err)
	}
	if committed[stuck.Partition] != stuck.Offset {
		t.Fatalf("after the stop the group committed %v; partition %d must stop at %d", committed, stuck.Partition, stuck.Offset)
	}

	// The next worker applies the rest.
	sink2 := newGatedSink(0)
	w2, stop2 := runWorker(t, cfg, opts, sink2)
	if err := w2.Progress().WaitFor(ctxT(t), ends, committed); err != nil {
		t.Fatal(err)
	}
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	if _, ok := sink2.store[string(stuck.Key)]; !ok {
		t.Fatalf("the stuck key was never applied by the next worker")
	}
}

// A rebalance while records are in flight commits, for each partition
// taken away, exactly what is finished of it; its new owner applies the
// rest.
func TestRevokedPartitionsCommitOnlyTheirFinishedPrefix(t *testing.T) {
	t.Parallel()
	cfg := fakeCluster(t, "events", "events.dlq")
	recs := produceKeys(t, cfg, 300)
	// One stuck record in every partition, in its middle.
	stuck := map[int32]*kgo.Record{}
	var held []string
	for _, r := range recs[150:] {
		if stuck[r.Partition] == nil {
			stuck[r.Partition] = r
			held = append(held, string(r.Key))
		}
	}
	if len(stuck) != 3 {
		t.Fatalf("records in %d partitions, want 3", len(stuck))
	}
	sinkA := newGatedSink(0, held...)
	opts := WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq", MaxBatch: 1}
	wA, stopA := runWorker(t, cfg, opts, sinkA)
	want := map[int32]int64{}
	for p, r := range stuck {
		want[p] = r.Offset
	}
	waitUntil(t, "worker A has committed up to each stuck record", func() bool {
		return wA.Progress().WaitFor(expired(), want, nil) == nil
	})

	// Worker B joins: A gives up some partitions, each with a stuck
	// record in flight.
	sinkB := newGatedSink(0)
	_, stopB := runWorker(t, cfg, opts, sinkB)
	waitUntil(t, "worker B applies a stuck key", func() bool {
		sinkB.mu.Lock()
		defer sinkB.mu.Unlock()
		for _, k := range held {
			if _, ok := sinkB.store[k]; ok {
				return true
			}
		}
		return false
	})
	pcl := mustConnect(t, cfg)
	committed, err := CommittedOffsets(ctxT(t), pcl, "g", "events")
	if err != nil {
		t.Fatal(err)
	}
	for p, r := range stuck {
		if committed[p] < r.Offset {
			t.Fatalf("partition %d committed to %d, below %d: the revoke lost finished work", p, committed[p], r.Offset)
		}
		// B owns p once it has applied its stuck key; until then A
		// holds p at the stuck record.
		sinkB.mu.Lock()
		_, ownedByB := sinkB.store[string(r.Key)]
		sinkB.mu.Unlock()
		if !ownedByB && committed[p] != r.Offset {
			t.Fatalf("partition %d, still A's, committed to %d past its stuck record at %d", p, committed[p], r.Offset)
		}
	}
	// Release A's stuck writes: they finish on partitions A may no longer
	// own, and commit nothing there.
	for _, k := range held {
		sinkA.release(k)
	}
	ends, err := EndOffsets(ctxT(t), pcl, "events")
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the group commits every partition to its end", func() bool {
		c, err := CommittedOffsets(ctxT(t), pcl, "g", "events")
		if err != nil {
			return false
		}
		for p, end := range ends {
			if c[p] != end {
				return false
			}
		}
		return true
	})
	for _, stop := range []func() error{stopA, stopB} {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	union := map[string]bool{}
	for _, s := range []*gatedSink{sinkA, sinkB} {
		for k := range s.store {
			union[k] = true
		}
	}
	if len(union) != 300 {
		t.Fatalf("%d keys applied by both workers together, want every one of 300", len(union))
	}
}

// expired is a context already done: WaitFor then only checks.
func expired() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
