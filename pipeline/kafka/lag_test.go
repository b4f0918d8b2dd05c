package kafka

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The group's lag per partition counts every record of a partition it
// never committed to; the records a topic holds are counted between its
// start and end; a topic that does not exist has neither.
func TestGroupLagAndHeldRecords(t *testing.T) {
	cl, ctx := eventsCluster(t)
	var recs []*kgo.Record
	for p, n := range []int{3, 2} {
		for range n {
			recs = append(recs, &kgo.Record{Topic: "events", Partition: int32(p), Value: []byte("x")})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := CommitGroupOffsets(ctx, cl, "sinks", "events", map[int32]int64{0: 1}); err != nil {
		t.Fatal(err)
	}
	lag, err := GroupLag(ctx, cl, "sinks", "events")
	want := []PartitionLag{{0, 3, 1, 2}, {1, 2, -1, 2}, {2, 0, -1, 0}}
	if err != nil || !slices.Equal(lag, want) {
		t.Fatalf("lag %v, %v; want %v", lag, err, want)
	}
	if n, err := HeldRecords(ctx, cl, "events"); err != nil || n != 5 {
		t.Fatalf("held %d, %v; want 5", n, err)
	}

	if lag, err := GroupLag(ctx, cl, "sinks", "missing"); err != nil || len(lag) != 0 {
		t.Fatalf("a missing topic's lag: %v, %v", lag, err)
	}
	if n, err := HeldRecords(ctx, cl, "missing"); err != nil || n != 0 {
		t.Fatalf("a missing topic holds %d, %v", n, err)
	}
}
