package kafka

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

// The README says the Kafka transport keeps each key's events in order
// and that truncate events are barriers; these tests show both through a
// Publisher and a Worker, against kfake.

// recordingSink applies everything and records each Apply call, in order.
type recordingSink struct {
	mu    sync.Mutex
	calls [][]pipeline.Event
}

func (s *recordingSink) Apply(_ context.Context, events []pipeline.Event) ([]pipeline.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, slices.Clone(events))
	out := make([]pipeline.Result, len(events))
	for i := range out {
		out[i] = pipeline.Result{Outcome: pipeline.Applied}
	}
	return out, nil
}

// applied returns every event applied, in the order the sink saw them.
func (s *recordingSink) applied() []pipeline.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []pipeline.Event
	for _, c := range s.calls {
		out = append(out, c...)
	}
	return out
}

// publishAndApply publishes batches (a truncate event is broadcast) and
// runs a worker until it has committed everything; it returns the sink,
// the worker's stats and the topic's records.
func publishAndApply(t *testing.T, batches [][]pipeline.Event) (*recordingSink, WorkerStats, []*kgo.Record) {
	t.Helper()
	cfg := fakeCluster(t, "events", "events.dlq") // 3 partitions
	popts := PublisherOptions{Topic: "events", DeadLetterTopic: "events.dlq"}
	pub := newPublisher(t, cfg, popts)
	for _, b := range batches {
		var err error
		if len(b) == 1 && b[0].Op == pipeline.OpTruncate {
			err = pub.Broadcast(ctxT(t), b[0], nil)
		} else {
			err = pub.Publish(ctxT(t), pipeline.Batch{Events: b}, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if st := pub.Stats(); st.DeadLettered != 0 {
		t.Fatalf("publisher dead-lettered %d events", st.DeadLettered)
	}
	ends, err := EndOffsets(ctxT(t), mustConnect(t, cfg), "events")
	if err != nil {
		t.Fatal(err)
	}
	sink := &recordingSink{}
	w := runToEnd(t, cfg, WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq"}, sink)
	total := 0
	for _, e := range ends {
		total += int(e)
	}
	return sink, w.Stats(), consumeAll(t, cfg, "events", total)
}

// label names an event in failure messages and comparisons.
func label(e pipeline.Event) string {
	if e.Op == pipeline.OpTruncate {
		return fmt.Sprintf("truncate(p%d)", e.Scope.Partition)
	}
	return fmt.Sprintf("%s=%s", e.Key, e.Value.String)
}

// TestTwoEventsForOneKeyKeepTheirOrder: several events for one key —
// in one batch, and in batches published one after the other — reach the
// sink in the order they were published, and every record of a key is on
// one partition.
func TestTwoEventsForOneKeyKeepTheirOrder(t *testing.T) {
	t.Parallel()
	var batches [][]pipeline.Event
	want := map[string][]string{} // key → values in publish order
	add := func(b []pipeline.Event, key string, n int) []pipeline.Event {
		v := fmt.Sprint("v", len(want[key])+1)
		want[key] = append(want[key], v)
		return append(b, stringEvent(key, uint64(n), v))
	}
	n := 0
	for round := range 3 {
		var b []pipeline.Event
		for i := range 100 {
			n++
			b = add(b, fmt.Sprint("k", i), n)
			if round == 1 && i%3 == 0 { // a second event of the key in the same batch
				n++
				b = add(b, fmt.Sprint("k", i), n)
			}
		}
		batches = append(batches, b)
	}
	sink, _, recs := publishAndApply(t, batches)

	got := map[string][]string{}
	for _, e := range sink.applied() {
		got[string(e.Key)] = append(got[string(e.Key)], string(e.Value.String))
	}
	for key, vs := range want {
		if !slices.Equal(got[key], vs) {
			t.Errorf("key %s applied as %v, published as %v", key, got[key], vs)
		}
	}
	partition := map[string]int32{}
	for _, r := range recs {
		if p, seen := partition[string(r.Key)]; seen && p != r.Partition {
			t.Fatalf("key %s has records on partitions %d and %d", r.Key, p, r.Partition)
		}
		partition[string(r.Key)] = r.Partition
	}
	if len(partition) != len(want) {
		t.Fatalf("the topic holds %d keys, want %d", len(partition), len(want))
	}
}

// TestTruncateIsABarrier: a truncate is broadcast to every partition, and
// the worker applies each copy on its own, after every event published
// before it on that partition and before every event published after it,
// even when one fetch brings both sides: the sweep must see exactly what
// its partition wrote before it.
func TestTruncateIsABarrier(t *testing.T) {
	t.Parallel()
	const partitions = 3
	var before, after []pipeline.Event
	for i := range 60 {
		before = append(before, stringEvent(fmt.Sprint("a", i), uint64(i+1), "before"))
		after = append(after, stringEvent(fmt.Sprint("b", i), uint64(1000+i), "after"))
	}
	after = append(after, stringEvent("a7", 2000, "after")) // a key of both sides
	truncate := pipeline.Event{Op: pipeline.OpTruncate, Origin: pipeline.OriginLive, Version: pipeline.ClockVersion(0, 500, false),
		Scope: &pipeline.Scope{}, Source: pipeline.SourceInfo{Connector: "redis", Name: "t"}}
	sink, _, _ := publishAndApply(t, [][]pipeline.Event{before, {truncate}, after})

	// Each partition's events, in the order the sink applied them, must
	// be its events before the truncate (in any order: different keys are
	// applied in parallel), its copy, then its events after, with each
	// key's events in order.
	want := make([][]string, partitions)
	for p := range partitions {
		var side []string
		for _, e := range before {
			if pipeline.PartitionOf(e.Key, partitions) == int32(p) {
				side = append(side, label(e))
			}
		}
		slices.Sort(side)
		want[p] = append(side, fmt.Sprintf("truncate(p%d)", p))
		side = nil
		for _, e := range after {
			if pipeline.PartitionOf(e.Key, partitions) == int32(p) {
				side = append(side, label(e))
			}
		}
		slices.Sort(side)
		want[p] = append(want[p], side...)
	}
	got := make([][]string, partitions)
	for _, e := range sink.applied() {
		p := pipeline.PartitionOf(e.Key, partitions)
		if e.Op == pipeline.OpTruncate {
			if e.Scope.Partitions != partitions {
				t.Fatalf("truncate copy for %d partitions, want %d", e.Scope.Partitions, partitions)
			}
			p = e.Scope.Partition
		}
		got[p] = append(got[p], label(e))
	}
	for p := range partitions {
		if i := slices.Index(got[p], fmt.Sprintf("truncate(p%d)", p)); i >= 0 {
			slices.Sort(got[p][:i])
			slices.Sort(got[p][i+1:])
		}
		if !slices.Equal(got[p], want[p]) {
			t.Errorf("partition %d applied\n%v\nwant\n%v", p, got[p], want[p])
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, c := range sink.calls {
		for _, e := range c {
			if e.Op == pipeline.OpTruncate && len(c) != 1 {
				t.Fatalf("a truncate was applied with %d other events in one call", len(c)-1)
			}
		}
	}
}
