package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/test/chaos"
	"github.com/cutover/cutover/test/stack"
)

// TestReconcileRepairUnderWritesNeverGoesBackwards runs `reconcile
// --repair --delete-extra` again and again while a writer changes and
// deletes keys and replicate applies every change to the target, then
// proves that no key of the writer went backwards in the target (watched
// the whole time) and that, once the writer stopped, the target holds
// exactly the source's keys: none lost, none resurrected, none older.
//
// The bug it pins (cutover issue 13): reconcile's re-check read the source
// first and the target second, and stamped a repair that was not newer
// than the target's version with that version's Next(). A change written
// after the source read and applied before the target lookup was missing
// from the repair's state but not from the target's version, so the repair
// put the older state over the newer one: a key went back to an older
// value, a deleted key came back as "missing", a key re-created after the
// source said it was gone was deleted as "extra". The window is the time
// between the two reads of a key, so the test plants drift in big keys
// (different in the target, and extra in it) that every run re-checks and
// repairs in the same batch as the writer's keys: the reads of a batch take
// longer than the pipeline needs to carry a change across.
func TestReconcileRepairUnderWritesNeverGoesBackwards(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 4*time.Minute)
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	w := &chaos.Writer{Keys: 1000, Prefix: "w:", Seed: 13, Rate: 2000, Deletes: 0.25}
	must(t, w.Fill(ctx, src.Client))
	const ballast, ballastBytes = 300, 32 << 10
	big := bytes.Repeat([]byte("b"), ballastBytes)
	pipe := src.Client.Pipeline()
	for i := range ballast {
		pipe.Set(ctx, fmt.Sprint("b:", i), big, 0)
	}
	_, err := pipe.Exec(ctx)
	must(t, err)

	p := newRedisPipeline(t, src, dst)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	defer proc.Stop()
	keys := w.KeyNames()
	if d := convergeKeys(ctx, t, src.Client, dst.Client, keys, time.Minute); !d.OK() {
		out, errOut := proc.Output()
		t.Fatalf("the snapshot did not converge: %s\n%s\n%s", d, out, stack.Tail(errOut, 3000))
	}

	// Every change the target makes is read from here on: a key that
	// shows an older sequence number than before went backwards.
	monitor, err := chaos.StartNotifyMonitor(ctx, dst.Client, versionPrefix)
	must(t, err)
	defer monitor.Stop()
	wctx, stopWriting := context.WithCancel(ctx)
	defer stopWriting()
	var wg sync.WaitGroup
	wg.Go(func() { w.Run(wctx, src.Client) })

	// Repair rounds while the writer runs; each plants the ballast again.
	var repaired, writerKeysRepaired int64
	rounds := 0
	for deadline := time.Now().Add(25 * time.Second); time.Now().Before(deadline) || rounds < 3; rounds++ {
		plantBallast(ctx, t, dst.Client, ballast, ballastBytes)
		res := stack.Run(ctx, t, append([]string{"reconcile", "--output", "json", "--repair", "--delete-extra",
			"--rechecks", "1", "--recheck-delay", "1ms", "--samples", "5000"}, p.args...)...)
		var rep reconcileReport
		if res.Code != 0 && res.Code != 4 || json.Unmarshal([]byte(res.Stdout), &rep) != nil {
			t.Fatalf("reconcile --repair exited %d\n%s\n%s", res.Code, stack.Tail(res.Stdout, 3000), stack.Tail(res.Stderr, 3000))
		}
		repaired += rep.Repaired
		for _, samples := range rep.Samples {
			for _, s := range samples {
				if strings.HasPrefix(s.Key, "w:") {
					writerKeysRepaired++
				}
			}
		}
	}
	stopWriting()
	wg.Wait()
	t.Logf("%d reconcile runs repaired %d keys, %d of them the writer's, while it made %d operations", rounds, repaired, writerKeysRepaired, w.Ops())
	if repaired < int64(rounds*2*ballast) {
		t.Fatalf("%d keys repaired in %d runs: the planted drift alone is %d a run", repaired, rounds, 2*ballast)
	}

	d := convergeKeys(ctx, t, src.Client, dst.Client, keys, time.Minute)
	must(t, monitor.Sync(ctx))
	rep := monitor.Stop()
	if rep.Err != nil || rep.Regressions > 0 || !d.OK() {
		t.Errorf("a repair broke a guarantee:\n  %s\n  %s", d, rep)
	}
	if writerKeysRepaired == 0 {
		t.Errorf("no key of the writer was repaired while it wrote: the race was not exercised")
	}
}

// plantBallast makes the big keys differ in the target: each b:i holds
// other bytes (its version stays, so reconcile repairs it from the
// source), and x:i is only in the target (--delete-extra deletes it).
func plantBallast(ctx context.Context, t *testing.T, cl *goredis.Client, n, size int) {
	t.Helper()
	other := bytes.Repeat([]byte("d"), size)
	pipe := cl.Pipeline()
	for i := range n {
		pipe.Set(ctx, fmt.Sprint("b:", i), other, 0)
		pipe.Set(ctx, fmt.Sprint("x:", i), other, 0)
	}
	_, err := pipe.Exec(ctx)
	must(t, err)
}

// convergeKeys compares keys in the source and the target (type, value,
// expiry) until they are equal, or within passed; it returns the last
// comparison.
func convergeKeys(ctx context.Context, t *testing.T, src, dst *goredis.Client, keys []string, within time.Duration) chaos.Diff {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(200 * time.Millisecond) {
		s, err := chaos.ReadRedisKeys(ctx, src, keys)
		must(t, err)
		g, err := chaos.ReadRedisKeys(ctx, dst, keys)
		must(t, err)
		if d := chaos.CompareStates(s, g, time.Now(), ttlTolerance); d.OK() || time.Now().After(deadline) {
			return d
		}
	}
}
