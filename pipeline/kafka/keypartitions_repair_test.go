package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/checkpoint"
)

// The partition count may switch only when no event published under the
// old count can still be unapplied. KeyPartitions checks that at the
// moment it is called, and saves the new count for every later run; but
// `cutover reconcile --repair` called it too (connect with a publisher)
// while `cutover replicate` ran. The story, found by a review:
//
//  1. replicate starts on a topic of 3 partitions: the count 3 is saved.
//  2. The topic is grown to 5. replicate keeps 3 for its life.
//  3. reconcile --repair starts at a moment the sink group is caught up:
//     KeyPartitions saves 5, although replicate still publishes with 3.
//  4. replicate publishes a key's upsert on its partition under 3; it is
//     not applied yet when replicate is killed.
//  5. replicate restarts: saved (5) == topic (5), so it uses 5 at once,
//     without looking at the group. Its heal's truncate for the key goes
//     to another partition than the unapplied upsert, which can then be
//     applied after the truncate and bring back a key deleted meanwhile.
//
// The restart must keep 3 while the record of step 4 is unapplied: a
// repair's publisher now keeps the saved count (KeepSaved).
func TestKeyPartitionsAConcurrentRepairDoesNotSwitchTheSourcesCount(t *testing.T) {
	cfg := fakeCluster(t, "events") // 3 partitions
	cl := mustConnect(t, cfg, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := ctxT(t)
	store := checkpoint.NewMemoryStore()
	// What cmd/cutover's connect passes for replicate.
	opts := KeyPartitionsOptions{Pipeline: "p", Topic: "events", Group: "sinks"}
	adm := kadm.NewClient(cl)

	// 1. replicate's first run.
	if n, err := KeyPartitions(ctx, cl, store, 3, opts); err != nil || n != 3 {
		t.Fatalf("replicate's first run: %d, %v", n, err)
	}
	// 2. The topic grows while replicate runs with 3.
	if _, err := adm.CreatePartitions(ctx, 2, "events"); err != nil {
		t.Fatal(err)
	}
	// 3. The group is caught up (nothing unapplied): reconcile --repair
	// connects its publisher, beside the source.
	repair := opts
	repair.KeepSaved = true
	if n, err := KeyPartitions(ctx, cl, store, 5, repair); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("reconcile --repair publishes over %d partitions", n)
	}
	// 4. The still-running replicate publishes a key's event on its
	// partition under the count 3; the group has not applied it.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "events", Partition: 2, Key: []byte("k"), Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// 5. replicate restarts.
	n, err := KeyPartitions(ctx, cl, store, 5, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("the restarted source spreads keys over %d partitions while an event published under 3 is unapplied; want 3", n)
	}
}
