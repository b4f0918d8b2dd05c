package report

import (
	"context"
	"testing"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline/kafka"
)

// status lists only its pipeline's checkpoints, by name; a state that is
// not JSON shows as its size.
func TestStatusReadCheckpoints(t *testing.T) {
	ctx := context.Background()
	store, err := checkpoint.NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"p/scan/b": `{"cursor":7}`, "p/scan/a": "\x00\x01\x02", "other/scan": `{}`} {
		if err := store.Save(ctx, name, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	rep := &Status{Pipeline: "p"}
	if err := rep.ReadCheckpoints(ctx, store); err != nil {
		t.Fatal(err)
	}
	if len(rep.Checkpoints) != 2 {
		t.Fatalf("checkpoints %+v", rep.Checkpoints)
	}
	for i, want := range []struct{ name, state string }{{"p/scan/a", `"3 bytes"`}, {"p/scan/b", `{"cursor":7}`}} {
		c := rep.Checkpoints[i]
		if c.Name != want.name || string(c.State) != want.state || c.Saved.IsZero() || c.AgeSecs < 0 {
			t.Errorf("checkpoint %d: %+v; want %s %s", i, c, want.name, want.state)
		}
	}
}

func TestStatusSetLag(t *testing.T) {
	rep := &Status{}
	rep.SetLag([]kafka.PartitionLag{{Partition: 0, End: 3, Committed: 1, Lag: 2}, {Partition: 1, End: 4, Committed: -1, Lag: 4}})
	if rep.Lag != 6 || len(rep.Partitions) != 2 || rep.Partitions[1] != (PartitionStatus{Partition: 1, End: 4, Committed: -1, Lag: 4}) {
		t.Fatalf("%+v", rep)
	}
}
