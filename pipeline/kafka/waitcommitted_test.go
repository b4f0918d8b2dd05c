package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// WaitCommitted returns once the group committed past the offsets, the
// partitions still behind when its context ends, and poll's error.
func TestWaitCommitted(t *testing.T) {
	cl, ctx := eventsCluster(t)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "events", Partition: 1, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	end := map[int32]int64{0: 0, 1: 1, 2: 0}

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	behind, err := WaitCommitted(short, cl, "sinks", "events", end, 50*time.Millisecond, nil)
	if !errors.Is(err, context.DeadlineExceeded) || len(behind) != 1 || behind[1] != 1 {
		t.Fatalf("nothing committed: %v, behind %v; want partition 1 behind", err, behind)
	}

	stopped := errors.New("worker stopped")
	if _, err := WaitCommitted(ctx, cl, "sinks", "events", end, 50*time.Millisecond, func(context.Context) error { return stopped }); !errors.Is(err, stopped) {
		t.Fatalf("poll's error: %v", err)
	}

	// The consumer poll starts commits past the end on its second call.
	polls := 0
	poll := func(ctx context.Context) error {
		if polls++; polls == 2 {
			offsets := kadm.Offsets{}
			offsets.Add(kadm.Offset{Topic: "events", Partition: 1, At: 1, LeaderEpoch: -1})
			_, err := kadm.NewClient(cl).CommitOffsets(ctx, "sinks", offsets)
			return err
		}
		return nil
	}
	if behind, err := WaitCommitted(ctx, cl, "sinks", "events", end, 50*time.Millisecond, poll); err != nil || behind != nil || polls != 2 {
		t.Fatalf("committed on the second poll: %v, behind %v, %d polls", err, behind, polls)
	}
}
