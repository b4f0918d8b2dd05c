package test

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// TestReplicateRedisClusterWithFailover replicates a 3-master Redis Cluster
// (every master snapshotted and followed: notifications are local to a
// node) while a writer changes keys on all of them, then kills a master.
// Its replica takes over; cutover notices the new topology, starts a new
// version epoch and heals the slots that changed hands; the target ends
// equal to the cluster.
func TestReplicateRedisClusterWithFailover(t *testing.T) {
	t.Parallel()
	cluster := stack.NewRedisCluster(t, 3, 1)
	dst := stack.NewRedis(t)
	ctx := testCtx(t, 5*time.Minute)
	if _, err := datagen.Seed(ctx, cluster.Client, datagen.Spec{Keys: 20_000, Seed: 21, TTLFraction: 0.1, BinaryFraction: 0.02}); err != nil {
		t.Fatal(err)
	}
	masters := cluster.Masters(t)
	if len(masters) != 3 {
		t.Fatalf("%d masters, want 3", len(masters))
	}
	p := newRedisPipeline(t, masters[0], dst)
	w := &datagen.Writer{Keys: 1000, Seed: 5, Prefix: "w:", Rate: 1000}
	stop := writeWhile(t, nil, w, cluster.Client)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Count(s, "snapshot published") == 3 })

	masters[1].Kill()
	// A heal done after the topology change, not one from before it.
	waitLog(t, proc, time.Minute, func(s string) bool {
		i := strings.Index(s, "topology changed")
		return i >= 0 && strings.Contains(s[i:], "heal done")
	})
	waitOps(t, w, w.Ops()+2000, time.Minute) // writes on the new topology
	stop()
	waitConverged(t, p, 2*time.Minute)
	if code := proc.Stop(); code != 0 {
		out, errOut := proc.Output()
		t.Fatalf("replicate exited %d\n%s\n%s", code, out, errOut)
	}
}
