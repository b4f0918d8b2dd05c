package kafka

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/checkpoint"
)

// The partition count keys are spread over: saved on the first run, kept
// after the topic grew until the group has applied everything there, and
// refused when the topic has fewer partitions than keys were sent to.
func TestKeyPartitions(t *testing.T) {
	cl, ctx := eventsCluster(t)
	store := checkpoint.NewMemoryStore()
	opts := KeyPartitionsOptions{Pipeline: "p", Topic: "events", Group: "sinks"}
	if n, err := KeyPartitions(ctx, cl, store, 3, opts); err != nil || n != 3 {
		t.Fatalf("first run: %d, %v", n, err)
	}
	if _, err := store.Load(ctx, "p/kafka/partitions"); err != nil {
		t.Fatalf("the count was not saved: %v", err)
	}

	// The topic grew to 5 while a record waits unapplied on it.
	if _, err := kadm.NewClient(cl).CreatePartitions(ctx, 2, "events"); err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: "events", Partition: 0, Value: []byte("x")}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if n, err := KeyPartitions(ctx, cl, store, 5, opts); err != nil || n != 3 {
		t.Fatalf("grown, the group behind: %d, %v; want the saved 3", n, err)
	}
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "events", Partition: 0, At: 1, LeaderEpoch: -1})
	if _, err := kadm.NewClient(cl).CommitOffsets(ctx, "sinks", offsets); err != nil {
		t.Fatal(err)
	}
	if n, err := KeyPartitions(ctx, cl, store, 5, opts); err != nil || n != 5 {
		t.Fatalf("grown, the group caught up: %d, %v; want 5", n, err)
	}

	_, err := KeyPartitions(ctx, cl, store, 4, opts)
	if err == nil || !strings.Contains(err.Error(), "fewer than the 5") {
		t.Fatalf("a topic with fewer partitions: %v", err)
	}
}

// eventsCluster is a fake cluster with topic events (3 partitions), and
// a client that produces to the partition a record names.
func eventsCluster(t *testing.T) (*kgo.Client, context.Context) {
	t.Helper()
	cl := mustConnect(t, fakeCluster(t, "events"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	return cl, ctxT(t)
}
