package test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// writeThroughSentinel is an application that follows its Redis through
// failovers: it sets and deletes keys w:0 … w:299 until stop is called,
// and counts the writes the master acknowledged.
func writeThroughSentinel(g *stack.RedisSentinel, perPause time.Duration) (acked *atomic.Int64, stop func()) {
	cl := goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: stack.SentinelMaster, SentinelAddrs: g.Addrs})
	ctx, cancel := context.WithCancel(context.Background())
	acked = &atomic.Int64{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ctx.Err() == nil; n++ {
			key := fmt.Sprintf("w:%d", n*13%300)
			var err error
			if n%7 == 3 {
				err = cl.Del(ctx, key).Err()
			} else {
				err = cl.Set(ctx, key, n, 0).Err()
			}
			if err == nil {
				acked.Add(1)
			}
			select {
			case <-ctx.Done():
			case <-time.After(perPause):
			}
		}
	}()
	return acked, func() { cancel(); wg.Wait(); cl.Close() }
}

// waitWrites waits until the writer has had n more writes acknowledged.
func waitWrites(t *testing.T, acked *atomic.Int64, n int64) {
	t.Helper()
	want := acked.Load() + n
	deadline := time.Now().Add(2 * time.Minute)
	for acked.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the writer got %d of %d writes acknowledged within 2m", acked.Load()-want+n, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitTargetHolds waits until the target holds n keys (a snapshot under
// way), failing if proc exits first.
func waitTargetHolds(t *testing.T, proc *stack.Proc, target *goredis.Client, n int64) {
	t.Helper()
	ctx := testCtx(t, 3*time.Minute)
	for deadline := time.Now().Add(2 * time.Minute); target.DBSize(ctx).Val() < n; {
		if time.Now().After(deadline) || proc.Exited() {
			_, errOut := proc.Output()
			t.Fatalf("the target holds %d keys, not %d, after 2m:\n%s", target.DBSize(ctx).Val(), n, stack.Tail(errOut, 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// seedSentinelMaster fills the master the sentinels of src name now with
// 3,000 datagen keys (a fifth with a TTL) from seed, and returns it.
func seedSentinelMaster(ctx context.Context, t *testing.T, src *stack.RedisSentinel, seed uint64) *stack.Redis {
	t.Helper()
	master, err := src.Master(ctx)
	must(t, err)
	_, err = datagen.Seed(ctx, master.Client, datagen.Spec{Keys: 3000, Seed: seed, TTLFraction: 0.2, MaxElements: 5})
	must(t, err)
	return master
}

// TestSentinelFailoverOnSourceAndTarget replicates a Redis watched by
// Sentinel into another, under a writer that follows the source's
// failovers: the source fails over during the snapshot and again during
// live capture, the target once. Replication is asynchronous, so a new
// master may lack the last writes its old one acknowledged: the target
// must end equal, key by key, to what the source's master holds then —
// nothing the new master holds lost, nothing it lacks kept.
func TestSentinelFailoverOnSourceAndTarget(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedisSentinel(t), stack.NewRedisSentinel(t)
	ctx := testCtx(t, time.Minute)
	first := seedSentinelMaster(ctx, t, src, 17)
	dstMaster, err := dst.Master(ctx)
	must(t, err)

	p := basePipeline(t, first)
	p.args = append(p.args,
		"--redis-sentinel-addrs", strings.Join(src.Addrs, ","), "--redis-master-name", stack.SentinelMaster,
		"--target-redis-sentinel-addrs", strings.Join(dst.Addrs, ","), "--target-redis-master-name", stack.SentinelMaster,
		// The target's failover must not take writes already applied away.
		"--target-redis-wait-replicas", "1",
		// A snapshot of a few seconds, so that the first failover falls in it.
		"--keys-per-second", "500")
	acked, stopWriter := writeThroughSentinel(src, 5*time.Millisecond)
	defer stopWriter()
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	waitTargetHolds(t, proc, dstMaster.Client, 300)
	src.Failover()
	waitLog(t, proc, 2*time.Minute, func(s string) bool { return strings.Count(s, "the sentinels name a new master") >= 1 })
	waitLog(t, proc, 3*time.Minute, func(s string) bool { return strings.Contains(s, "heal done") })
	waitWrites(t, acked, 300)

	dst.Failover()
	waitWrites(t, acked, 300)
	src.Failover()
	waitLog(t, proc, 2*time.Minute, func(s string) bool { return strings.Count(s, "the sentinels name a new master") >= 2 })
	waitWrites(t, acked, 300)
	stopWriter()

	drainSwitch(t, p)
	srcMaster, err := src.Master(ctx)
	must(t, err)
	if res := stack.Run(testCtx(t, time.Minute), t, append([]string{"status"}, p.args...)...); res.Code != 0 ||
		!strings.Contains(res.Stdout, "source master (named by the sentinels): "+srcMaster.Addr) {
		t.Errorf("status exited %d and does not name the source's master %s:\n%s\n%s", res.Code, srcMaster.Addr, res.Stdout, res.Stderr)
	}
	if srcMaster != first {
		t.Fatalf("after two failovers the source's master is %s, want %s again", srcMaster.Addr, first.Addr)
	}
	dstMaster, err = dst.Master(ctx)
	must(t, err)
	waitSame(t, srcMaster.Client, dstMaster.Client, 2*time.Minute)
	stopClean(t, "replicate", proc)
	out, _ := proc.Output()
	if !strings.Contains(out, "masters changed") {
		t.Errorf("the summary does not count the failovers:\n%s", out)
	}
	t.Logf("%d writes acknowledged; summary:\n%s", acked.Load(), out)
}

// TestSentinelFailoverDuringBackfill: a backfill reads the master the
// sentinels name and does not follow it. The master fails over in the
// middle: the old master, demoted, resynchronises from the new one and its
// data is replaced under the SCAN cursor, which may then miss keys. The
// backfill must fail saying so, and a second run must scan the new master
// from the start (its saved cursor belongs to another server) and leave
// the target equal to it.
func TestSentinelFailoverDuringBackfill(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedisSentinel(t), stack.NewRedis(t)
	ctx := testCtx(t, time.Minute)
	first := seedSentinelMaster(ctx, t, src, 19)
	p := newRedisPipeline(t, first, dst,
		"--redis-sentinel-addrs", strings.Join(src.Addrs, ","), "--redis-master-name", stack.SentinelMaster)
	// plan finds the master through the sentinels too.
	if res := stack.Run(testCtx(t, 3*time.Minute), t, append([]string{"plan", "--sample", "100"}, p.args...)...); res.Code != 0 ||
		!strings.Contains(res.Stdout, "master \""+stack.SentinelMaster+"\" is "+first.Addr) {
		t.Errorf("plan exited %d:\n%s\n%s", res.Code, res.Stdout, stack.Tail(res.Stderr, 20))
	}
	proc := stack.Start(t, nil, append([]string{"backfill", "--keys-per-second", "300"}, p.args...)...)
	waitTargetHolds(t, proc, dst.Client, 300)
	// The backfill is frozen while the master fails over, so that the
	// failover falls in its scan however fast the machine is.
	must(t, proc.Signal(syscall.SIGSTOP))
	src.Failover()
	must(t, proc.Signal(syscall.SIGCONT))
	if code := proc.Wait(t, 3*time.Minute); code == 0 {
		out, _ := proc.Output()
		_, errOut := proc.Output()
		t.Fatalf("the backfill exited 0 after its master failed over mid-scan:\n%s\n%s", out, stack.Tail(errOut, 30))
	}
	if _, errOut := proc.Output(); !strings.Contains(errOut, "failed over during the backfill") {
		t.Fatalf("the backfill's error does not say the master failed over:\n%s", stack.Tail(errOut, 20))
	}
	res := stack.Run(testCtx(t, 5*time.Minute), t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("the second backfill exited %d:\n%s\n%s", res.Code, res.Stdout, stack.Tail(res.Stderr, 30))
	}
	master, err := src.Master(ctx)
	must(t, err)
	waitSame(t, master.Client, dst.Client, time.Minute)
}
