package kafka

import "testing"

// A topic grown after the source started has partitions the source sends
// nothing to: they stay empty (end offset 0), no worker ever commits on
// them (a worker commits records it finished, and there are none), so the
// group has no committed offset there. Their target is their end offset
// at the drain's start, 0; "nothing committed" (-1) was never taken to
// reach it, and such a drain could never succeed: it waited until
// --timeout with a healthy pipeline.
func TestDrainDoneWithEmptyPartitionsTheSourceDoesNotPublishTo(t *testing.T) {
	start := map[int32]int64{0: 10, 1: 20, 2: 0, 3: 0}
	d := newDrainState("d", start)
	for p := range int32(2) {
		d.see(Barrier{ID: "d", Partition: p, Partitions: 2}, start[p]+3)
	}
	// Partitions 2 and 3 never held a record: the group committed nothing there.
	st := d.status(map[int32]int64{0: 14, 1: 24}, map[int32]int64{0: 14, 1: 24, 2: 0, 3: 0}, nil)
	if !st.Done {
		t.Fatalf("not drained though the group is past every barrier and partitions 2 and 3 are empty: %+v", st)
	}
}
