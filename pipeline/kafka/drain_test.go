package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

func newTestPublisher(t *testing.T, cfg Config) *Publisher {
	t.Helper()
	opts := PublisherOptions{Topic: "events", DeadLetterTopic: "events.dlq"}
	cl, err := Connect(ctxT(t), cfg, ProducerOpts(opts)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	p, err := NewPublisher(ctxT(t), cl, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func publishKeys(t *testing.T, p *Publisher, from, to int) {
	t.Helper()
	var evs []pipeline.Event
	for i := from; i < to; i++ {
		evs = append(evs, stringEvent(fmt.Sprintf("k%d", i), uint64(i+1), "v"))
	}
	if err := p.Publish(ctxT(t), pipeline.Batch{Events: evs}, nil); err != nil {
		t.Fatal(err)
	}
}

// A barrier lands on every partition after every event published before
// it there, carries the publisher's partition count, and a worker commits
// past it without applying or dead-lettering anything for it.
func TestBarrierFollowsEarlierEventsAndIsSkippedBySinks(t *testing.T) {
	cfg := fakeCluster(t, "events", "events.dlq")
	p := newTestPublisher(t, cfg)
	publishKeys(t, p, 0, 30)
	if err := p.Barrier(ctxT(t), "d1"); err != nil {
		t.Fatal(err)
	}
	publishKeys(t, p, 30, 60)
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	recs := consumeAll(t, cfg, "events", 63)
	seen := map[int32]bool{}
	for _, r := range recs {
		if b, ok := ParseBarrier(r); ok {
			if b.ID != "d1" || b.Partitions != 3 || b.Partition != r.Partition || seen[r.Partition] {
				t.Fatalf("barrier %+v on partition %d (seen before: %v)", b, r.Partition, seen[r.Partition])
			}
			seen[r.Partition] = true
			continue
		}
		var i int
		if _, err := fmt.Sscanf(string(r.Key), "k%d", &i); err != nil {
			t.Fatal(err)
		}
		if before := i < 30; before == seen[r.Partition] {
			t.Errorf("key %s (published %s the barrier) is on the other side of it on partition %d",
				r.Key, map[bool]string{true: "before", false: "after"}[before], r.Partition)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("barriers on %d partitions, want 3", len(seen))
	}
	if _, ok := IsBarrier(&kgo.Record{Value: []byte(`{"drain":"d1"}`)}); ok {
		t.Error("a record without the header is taken for a barrier")
	}

	sink := &memSink{store: map[string]pipeline.Event{}}
	w, stop := runWorker(t, cfg, WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq"}, sink)
	end, err := EndOffsets(ctxT(t), mustConnect(t, cfg), "events")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Progress().WaitFor(ctxT(t), end, nil); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Applied != 60 || st.DeadLettered != 0 || st.DecodeErrors != 0 {
		t.Fatalf("worker stats %+v: want the 60 events applied and nothing dead-lettered", st)
	}
}

func mustConnect(t *testing.T, cfg Config, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := Connect(ctxT(t), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// lateSource is a source that, asked whether it is drained, publishes
// one more event — a change it saw before the request but had not
// handed over yet — and then says yes.
type lateSource struct {
	pub   *Publisher
	mu    sync.Mutex
	calls int
}

func (s *lateSource) Drained(ctx context.Context) error {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	return s.pub.Publish(ctx, pipeline.Batch{Events: []pipeline.Event{stringEvent("late", 1, "v")}}, nil)
}

// Drain returns only once the sink group has applied what the source
// handed over before its barriers (the late event), and a request sent
// again is not answered twice.
func TestDrainWaitsUntilTheGroupAppliedThroughTheBarriers(t *testing.T) {
	cfg := fakeCluster(t, "events", "events.dlq")
	p := newTestPublisher(t, cfg)
	publishKeys(t, p, 0, 30)

	admin := mustConnect(t, cfg)
	if _, err := EnsureControlTopic(ctxT(t), admin, "events", 1); err != nil {
		t.Fatal(err)
	}
	from, err := ControlEnd(ctxT(t), admin, "events")
	if err != nil {
		t.Fatal(err)
	}
	src := &lateSource{pub: p}
	serveCtx, stopServing := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		ServeDrains(serveCtx, mustConnect(t, cfg, ControlConsumerOpts("events", from)...), p, src, slog.Default())
	}()
	defer func() { stopServing(); <-served }()

	sink := &memSink{store: map[string]pipeline.Event{}}
	_, stop := runWorker(t, cfg, WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq"}, sink)
	defer func() { _ = stop() }()

	var progress []DrainStatus
	st, err := Drain(ctxT(t), cfg, DrainOptions{Topic: "events", Group: "g", ResendEvery: 100 * time.Millisecond, CheckEvery: 50 * time.Millisecond,
		Progress: func(st DrainStatus) { progress = append(progress, st) }})
	if err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	_, late := sink.store["late"]
	n := len(sink.store)
	sink.mu.Unlock()
	if !st.Done || st.Barriers != 3 || st.Expected != 3 || st.CaughtUp != 3 || !late || n != 31 {
		t.Fatalf("drain returned %+v with %d keys applied (the late one: %v), want done after all 31", st, n, late)
	}
	for _, pt := range st.Partitions {
		if pt.Barrier < 0 || pt.Target != pt.Barrier+1 || pt.Committed < pt.Target || pt.Lag != 0 {
			t.Errorf("partition %+v", pt)
		}
	}
	if len(progress) == 0 {
		t.Error("no progress reported")
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.calls != 1 {
		t.Errorf("the source was asked %d times for one drain", src.calls)
	}
}

// Without a source answering, Drain ends with ErrNotDrained at its
// deadline and says that no barrier came.
func TestDrainWithoutSourceIsNotDrained(t *testing.T) {
	cfg := fakeCluster(t, "events", "events.dlq")
	publishKeys(t, newTestPublisher(t, cfg), 0, 10)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := Drain(ctx, cfg, DrainOptions{Topic: "events", Group: "g", ResendEvery: 200 * time.Millisecond, CheckEvery: 100 * time.Millisecond})
	if !errors.Is(err, ErrNotDrained) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrNotDrained at the deadline", err)
	}
	if st.Done || st.Expected != 0 || st.Requests < 2 || st.Missing() != "0, 1, 2" || len(st.Partitions) != 3 {
		t.Fatalf("status %+v (missing %q)", st, st.Missing())
	}
	var lag int64
	for _, pt := range st.Partitions {
		lag += pt.Lag
	}
	if lag != 10 {
		t.Errorf("lag %d, want the 10 events nobody applied", lag)
	}
}

func TestDrainStatus(t *testing.T) {
	start := map[int32]int64{0: 10, 1: 20, 2: 5, 3: 7}
	tests := []struct {
		name       string
		barriers   []Barrier // Partition set; offsets are start+3
		committed  map[int32]int64
		owners     map[int32]string
		done       bool
		caughtUp   int
		targets    []int64
		expected   int
		missingOut string
	}{
		{name: "no barrier yet", committed: map[int32]int64{0: 10, 1: 20, 2: 5, 3: 7},
			targets: []int64{-1, -1, -1, -1}, missingOut: "0, 1, 2, 3"},
		{name: "every barrier, group past them", barriers: barriersOn(4, 0, 1, 2, 3),
			committed: map[int32]int64{0: 14, 1: 24, 2: 9, 3: 11}, done: true, caughtUp: 4, targets: []int64{14, 24, 9, 11}, expected: 4},
		{name: "group at a barrier, not past it", barriers: barriersOn(4, 0, 1, 2, 3),
			committed: map[int32]int64{0: 13, 1: 24, 2: 9, 3: 11}, caughtUp: 3, targets: []int64{14, 24, 9, 11}, expected: 4},
		{name: "a barrier missing", barriers: barriersOn(4, 0, 1, 3),
			committed: map[int32]int64{0: 14, 1: 24, 2: 9, 3: 11}, caughtUp: 3, targets: []int64{14, 24, -1, 11}, expected: 4, missingOut: "2"},
		// The topic grew to 4 partitions after the source started with 2:
		// the others get no barrier and need only what they held.
		{name: "partitions the source does not publish to", barriers: barriersOn(2, 0, 1),
			committed: map[int32]int64{0: 14, 1: 24, 2: 5, 3: 7}, done: true, caughtUp: 4, targets: []int64{14, 24, 5, 7}, expected: 2},
		{name: "nothing committed", barriers: barriersOn(4, 0, 1, 2, 3),
			targets: []int64{14, 24, 9, 11}, expected: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDrainState("d", start)
			d.see(Barrier{ID: "other", Partition: 0, Partitions: 4}, 1) // another drain's
			for _, b := range tt.barriers {
				d.see(b, start[b.Partition]+3)
				d.see(b, start[b.Partition]+9) // a second answer: the first counts
			}
			st := d.status(tt.committed, map[int32]int64{0: 100, 1: 100, 2: 100, 3: 100}, tt.owners)
			if st.Done != tt.done || st.CaughtUp != tt.caughtUp || st.Expected != tt.expected || st.Missing() != tt.missingOut {
				t.Fatalf("status %+v, missing %q", st, st.Missing())
			}
			for i, pt := range st.Partitions {
				if pt.Target != tt.targets[i] {
					t.Errorf("partition %d target %d, want %d", i, pt.Target, tt.targets[i])
				}
				if pt.CaughtUp && pt.Lag != 0 || !pt.CaughtUp && pt.Lag == 0 {
					t.Errorf("partition %+v: lag and caught up disagree", pt)
				}
			}
		})
	}
}

func barriersOn(partitions int32, ps ...int32) []Barrier {
	var out []Barrier
	for _, p := range ps {
		out = append(out, Barrier{ID: "d", Partition: p, Partitions: partitions})
	}
	return out
}

func TestDrainRequestRoundTrip(t *testing.T) {
	req := DrainRequest{ID: "x", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	r := drainRequestRecord("events", req)
	if r.Topic != "events.control" {
		t.Fatalf("topic %s", r.Topic)
	}
	got, err := parseDrainRequest(r)
	if err != nil || got != req {
		t.Fatalf("got %+v, %v", got, err)
	}
	for _, bad := range []string{`{}`, `not json`} {
		if _, err := parseDrainRequest(&kgo.Record{Value: []byte(bad)}); err == nil || !strings.Contains(err.Error(), "drain request") {
			t.Errorf("%s: err %v", bad, err)
		}
	}
}
