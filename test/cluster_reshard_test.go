package test

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// TestReplicateRedisClusterReshard moves slots between masters of a live
// cluster while replicate follows it, the way a growing cluster is
// rebalanced (redis-cli --cluster reshard).
//
// The bug it pins: during a reshard the source logged MOVED/ASK retries,
// noticed the topology change, started a new version epoch and a heal on
// both masters — and then published nothing more, ever. The process stayed
// up, its progress line kept printing the same published count with gaps
// but no heals, and every change made after the reshard was missing from
// the target. Each topology change stopped the affected nodes by canceling
// their context; the producer fails a buffered record whose context ends
// (and the rest of its partition with it, whichever node published them),
// and one failed record makes the shared publisher refuse every later
// publish. Every node's live capture, the untouched master's too, then
// failed with an error that wraps context.Canceled, which Live.Run took for
// "stopped" and returned as nil: every node ended quietly while the process
// waited on. Whether a stop finds records still buffered is a race, so the
// test moves slots several times under a steady writer.
//
// Resharding is routine: the target must converge, and the process must
// neither die nor sit frozen.
func TestReplicateRedisClusterReshard(t *testing.T) {
	t.Parallel()
	cluster := stack.NewRedisCluster(t, 3, 0)
	dst := stack.NewRedis(t)
	ctx := testCtx(t, 6*time.Minute)
	if _, err := datagen.Seed(ctx, cluster.Client, datagen.Spec{Keys: 60_000, Seed: 31, TTLFraction: 0.1}); err != nil {
		t.Fatal(err)
	}
	masters := cluster.Masters(t)
	if len(masters) != 3 {
		t.Fatalf("%d masters, want 3", len(masters))
	}

	p := newRedisPipeline(t, masters[2], dst)
	w := &datagen.Writer{Keys: 3000, Seed: 9, Prefix: "w:", Rate: 2000}
	stop := writeWhile(t, nil, w, cluster.Client)
	defer stop()
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	// On failure, a goroutine dump shows where the source is stuck.
	t.Cleanup(func() {
		if !t.Failed() || proc.Exited() {
			return
		}
		_ = proc.Signal(syscall.SIGQUIT)
		deadline := time.Now().Add(10 * time.Second)
		for !proc.Exited() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		_, errOut := proc.Output()
		t.Logf("replicate's stderr, ending with its goroutine dump:\n%s", errOut)
	})
	waitLog(t, proc, 2*time.Minute, func(s string) bool { return strings.Count(s, "snapshot published") == 3 })

	// Four reshards of 2,000 slots each, one after the other, around the
	// masters, while the writer runs. Every slot moved changes the
	// topology cutover sees: each check (every 2s) stops the two masters
	// whose slots changed and starts them again with a heal. Whether a
	// stop lands while that node still has events buffered in the
	// producer is a race; four reshards give it a dozen or so chances.
	for _, move := range [][2]int{{0, 1}, {1, 2}, {2, 0}, {0, 1}} {
		reshard(ctx, t, masters[move[0]], masters[move[1]], 2000)
	}
	t.Logf("reshards done after %d writer operations", w.Ops())

	// Keep writing after the reshard: these changes are the ones the
	// report found missing.
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "topology changed") })
	after := w.Ops() + 5_000
	for w.Ops() < after {
		if proc.Exited() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("writer made %d operations", stop())

	if proc.Exited() {
		_, errOut := proc.Output()
		t.Fatalf("replicate stopped during the reshard (exit %d):\n%s", exitCode(proc), lastLines(errOut, 40))
	}
	waitConverged(t, p, 2*time.Minute)
	if code := proc.Stop(); code != 0 {
		out, errOut := proc.Output()
		t.Fatalf("replicate exited %d on SIGTERM\n%s\n%s", code, out, lastLines(errOut, 40))
	}
}

// reshard moves slots from one master to another with redis-cli, as an
// operator would.
func reshard(ctx context.Context, t *testing.T, from, to *stack.Redis, slots int) {
	t.Helper()
	fromID, err := from.Client.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	toID, err := to.Client.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "redis-cli", "--cluster", "reshard", from.Addr,
		"--cluster-from", fromID, "--cluster-to", toID, "--cluster-slots", strconv.Itoa(slots), "--cluster-yes")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster reshard: %v\n%s", err, lastLines(string(out), 20))
	}
}

// exitCode is the exit code of a process that has already exited (Stop
// returns it at once).
func exitCode(p *stack.Proc) int { return p.Stop() }

// lastLines is the end of a long output, for a failure message.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("[... %d lines ...]\n%s", len(lines)-n, strings.Join(lines[len(lines)-n:], "\n"))
}
