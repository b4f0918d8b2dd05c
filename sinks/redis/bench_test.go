package redis

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/stack"
)

// stringEvents are n upserts of 100-byte strings, each with a TTL.
func stringEvents(n int, version uint64) []pipeline.Event {
	events := make([]pipeline.Event, n)
	val := make([]byte, 100)
	for i := range events {
		events[i] = pipeline.Event{Key: fmt.Appendf(nil, "bench:%07d", i), Op: pipeline.OpUpsert, Origin: pipeline.OriginSnapshot,
			Version: pipeline.ClockVersion(0, version, false), Value: pipeline.Value{Type: pipeline.TypeString, String: val},
			ExpireAt: time.Now().Add(time.Hour)}
	}
	return events
}

// BenchmarkEventArgs is the sink's CPU work per event before any I/O:
// the arguments of the conditional-apply script.
func BenchmarkEventArgs(b *testing.B) {
	s, err := New(nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	e := stringEvents(1, 1)[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.args(&e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply is the whole per-event hot path on a real Redis: one op
// applies a batch of 500 conditional upserts; ns/event and allocs/event
// are reported (allocs/event counts building the event too: two).
func BenchmarkApply(b *testing.B) {
	r := stack.NewRedis(b)
	s, err := New(r.Client, Options{Addr: r.Addr})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Prepare(ctx); err != nil {
		b.Fatal(err)
	}
	const batch = 500
	version := uint64(1)
	var allocs runtime.MemStats
	runtime.ReadMemStats(&allocs)
	before := allocs.Mallocs
	for b.Loop() {
		b.StopTimer()
		version++
		events := stringEvents(batch, version)
		b.StartTimer()
		if _, err := s.Apply(ctx, events); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&allocs)
	events := float64(b.N * batch)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
	b.ReportMetric(float64(allocs.Mallocs-before)/events, "allocs/event")
}
