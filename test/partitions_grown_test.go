package test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/stack"
)

// TestGrownTopicRestartDoesNotResurrect (found by review): the README says to restart
// cutover after adding partitions to the topic; the restarted source
// spreads keys over the new count and heals, its truncate naming the new
// count. But the events of the earlier run are still where the old count
// put them, and a sink that has not applied them yet applies the two
// partitions independently. A key created in run 1 (its upsert still
// unapplied in partition PartitionOf(k, 4)) and deleted while cutover was
// stopped is covered by the truncate of partition PartitionOf(k, 8): when
// that sweep runs first, the key is not in the target yet, so it gets no
// tombstone; run 1's upsert lands afterwards and the key stays in the
// target for good.
func TestGrownTopicRestartDoesNotResurrect(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 6*time.Minute)
	// Values that do not compress, so that a partition's records take
	// many fetches (1 MiB per partition) to read.
	fill := func() {
		for start := 0; start < 20000; start += 500 {
			pipe := src.Client.Pipeline()
			for i := start; i < start+500; i++ {
				big := make([]byte, 1000)
				_, _ = rand.Read(big)
				pipe.Set(ctx, fmt.Sprintf("k:%d", i), big, 0)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill()
	// A key that moves from one of the first four partitions to one of the
	// four added ones.
	var ghost string
	for i := 0; ghost == ""; i++ {
		k := fmt.Sprintf("ghost:%d", i)
		if pipeline.PartitionOf([]byte(k), 8) >= 4 {
			ghost = k
		}
	}
	p := newRedisPipeline(t, src, dst)
	proc := stack.Start(t, nil, append([]string{"replicate", "--no-sink"}, p.args...)...)
	waitLog(t, proc, 2*time.Minute, func(s string) bool { return strings.Contains(s, "snapshot published") })
	fill() // 20,000 more events of run 1 ahead of the ghost's, so the sink reaches it late
	if err := src.Client.Set(ctx, ghost, "boo", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, proc, 2*time.Minute, func(s string) bool { return strings.Contains(s, "published=40001") })
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d", code)
	}
	// While cutover is stopped: the ghost is deleted, the topic grows.
	if err := src.Client.Del(ctx, ghost).Err(); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreatePartitions(ctx, 4, "cutover."+p.name); err != nil {
		t.Fatal(err)
	}
	// Restart as the README says: the source heals with the new count.
	proc = stack.Start(t, nil, append([]string{"replicate", "--no-sink"}, p.args...)...)
	waitLog(t, proc, 2*time.Minute, func(s string) bool { return strings.Contains(s, "heal done") })
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d", code)
	}
	// Now the sink workers catch up.
	sink := stack.Start(t, nil, append([]string{"sink"}, p.args...)...)
	waitKeys(t, dst.Client, "k:*", 20000, 2*time.Minute)
	// The heal's truncate, one copy per partition keys were sent to.
	waitLog(t, sink, 2*time.Minute, func(s string) bool { return strings.Count(s, "truncate applied") >= 4 })
	// Wait until the sink group has applied every record (lag 0).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		res := stack.Run(testCtx(t, time.Minute), t, append([]string{"status", "--output", "json"}, p.args...)...)
		var rep struct {
			Lag int64 `json:"lag"`
		}
		if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &rep) != nil {
			t.Fatalf("status exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
		}
		if rep.Lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag still %d", rep.Lag)
		}
		time.Sleep(time.Second)
	}
	if n, _ := dst.Client.Exists(ctx, ghost).Result(); n == 1 {
		t.Errorf("%s, deleted in the source while cutover was stopped, is in the target after every event was applied (old partition %d, new %d)",
			ghost, pipeline.PartitionOf([]byte(ghost), 4), pipeline.PartitionOf([]byte(ghost), 8))
	}
	sink.Stop()
}
