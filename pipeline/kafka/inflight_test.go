package kafka

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

// retained is how many records the worker keeps (tracked in a partition
// log, finished or not), and their key and value bytes.
func (f *inFlight) retained() (n int, bytes int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.parts {
		n += len(l.recs)
		for _, t := range l.recs {
			bytes += t.size
		}
	}
	return n, bytes
}

// One record stuck at the head of a partition (a DynamoDB item retried
// for as long as it is throttled, say) kept every record fetched after
// it in memory: the window counted only unfinished records, while the
// partition's log held each finished one behind the stuck record until
// it finished. Found by review; the finished records behind an
// unfinished one now count against the window too.
func TestAStuckRecordDoesNotGrowMemory(t *testing.T) {
	t.Parallel()
	cfg := fakeCluster(t, "events", "events.dlq")
	events := []pipeline.Event{stringEvent("stuck", 1, "v")}
	for i := range 3000 {
		events = append(events, stringEvent(fmt.Sprint("k", i), 1, string(make([]byte, 200))))
	}
	produceEvents(t, cfg, events)
	sink := newGatedSink(0, "stuck")
	const window = 100
	opts := WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq", MaxBatch: 1,
		MaxInFlightRecords: window, MaxInFlightBytes: 64 << 10}
	w, stop := runWorker(t, cfg, opts, sink)
	defer func() { sink.release("stuck"); _ = stop() }()
	waitUntil(t, "every other key is applied, or the window is full", func() bool {
		return w.Stats().Applied == 3000 || w.inflight.room() == 0
	})
	if n, b := w.inflight.retained(); n > 2*window || b > 2*opts.MaxInFlightBytes {
		t.Fatalf("the worker holds %d records (%d bytes) behind one stuck record; the window is %d records, %d bytes",
			n, b, window, opts.MaxInFlightBytes)
	}
}

// franz-go reads a partition from below what it already returned when
// the log was cut back under it (an unclean leader election: ErrDataLoss,
// which the worker logs and reads past). Those records are new. They were
// taken for records already in flight and dropped unapplied, and the
// commit of the next record past the old end went over them. Found by
// review.
func TestRecordsReadAgainAfterTheLogWasCutBackAreApplied(t *testing.T) {
	f := newInFlight(100, 1<<20)
	rec := func(off int64) *kgo.Record {
		return &kgo.Record{Topic: "events", Partition: 0, Offset: off, Key: []byte("k")}
	}
	for off := range int64(10) {
		f.finish(f.add(rec(off)))
	}
	if r := f.takeReady(); len(r) != 1 || r[0].rec.Offset != 9 {
		t.Fatalf("ready to commit %v, want offset 9", r)
	}
	// The log was cut back to offset 5 and holds new records from there.
	var tracked []*tracked
	for off := int64(5); off < 13; off++ {
		tr := f.add(rec(off))
		if tr == nil {
			t.Fatalf("offset %d, read again after the log was cut back, was not tracked (not applied)", off)
		}
		tracked = append(tracked, tr)
	}
	f.finish(tracked[3:]...) // 8..12 finish first: nothing may commit past 5
	if r := f.takeReady(); len(r) != 0 {
		t.Fatalf("ready to commit %d while offset 5 is still in flight", r[0].rec.Offset)
	}
	f.finish(tracked...)
	if r := f.takeReady(); len(r) != 1 || r[0].rec.Offset != 12 {
		t.Fatalf("ready to commit %v, want offset 12", r)
	}
}
