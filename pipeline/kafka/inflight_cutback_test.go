package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A log cut back under the consumer (unclean leader election) loses only
// its records from the new end on: the records below it are still the
// partition's, and one of them may still be being applied. add started a
// fresh log at the cut and forgot the old one, unfinished records
// included, so the new log's finished prefix — a drain barrier is finished
// the moment it is tracked — was committed past a record below the cut
// that was still in flight: `cutover drain` saw the group past its
// barrier while an event published before the barrier was not applied,
// and a crash at that moment lost the event (the commit skipped it).
func TestCutBackLogDoesNotCommitPastAnUnfinishedRecordBelowTheCut(t *testing.T) {
	f := newInFlight(100, 1<<20)
	rec := func(off int64) *kgo.Record {
		return &kgo.Record{Topic: "events", Partition: 0, Offset: off, Key: []byte("k")}
	}
	slow := f.add(rec(10)) // an event being applied (a throttled write, say)
	f.finish(f.add(rec(11)), f.add(rec(12)))
	// The log is cut back to 12 (12 lost, 10 and 11 kept); franz-go reads on
	// from 12: a new event, then the drain barrier at 13.
	f.finish(f.add(rec(12)))
	barrier := &kgo.Record{Topic: "events", Partition: 0, Offset: 13,
		Headers: []kgo.RecordHeader{{Key: HeaderBarrier, Value: []byte("d")}}}
	f.finish(f.add(barrier))
	if r := f.takeReady(); len(r) != 0 {
		t.Fatalf("ready to commit offset %d (barrier passed) while offset 10, below the cut, is still being applied", r[0].rec.Offset)
	}
	f.finish(slow)
	if r := f.takeReady(); len(r) != 1 || r[0].rec.Offset != 13 {
		t.Fatalf("ready to commit %v once offset 10 finished, want offset 13", r)
	}
}
