package test

import (
	"context"
	"encoding/json"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// writeWhile runs a writer on r (or on the client given instead) until
// the returned stop function is called, and returns how many operations it
// made.
func writeWhile(t *testing.T, r *stack.Redis, w *datagen.Writer, client ...goredis.UniversalClient) (stop func() int64) {
	t.Helper()
	var cl goredis.UniversalClient
	if len(client) > 0 {
		cl = client[0]
	} else {
		cl = r.Client
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, cl)
	}()
	return func() int64 {
		cancel()
		<-done
		return w.Ops()
	}
}

// waitConverged runs reconcile until the target matches the source, key
// by key both ways, or fails the test with the last report.
func waitConverged(t *testing.T, p pipelineArgs, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last stack.Result
	for time.Now().Before(deadline) {
		// Short re-checks: this loop is the retry (a target still
		// catching up would make every page wait for the full ones).
		args := append([]string{"reconcile", "--samples", "20", "--recheck-delay", "500ms", "--rechecks", "1"}, p.args...)
		last = stack.Run(testCtx(t, 2*time.Minute), t, args...)
		if last.Code == 0 {
			return
		}
		if last.Code != 4 {
			t.Fatalf("reconcile failed (exit %d):\n%s\n%s", last.Code, last.Stdout, last.Stderr)
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("the target did not converge within %v; last reconcile:\n%s", within, last.Stdout)
}

// TestReplicateConvergesUnderWrites: a writer changes keys of every type —
// writes, deletes, expiries, renames, copies, moves — during the snapshot
// and after it; once it stops, the target equals the source key by key.
func TestReplicateConvergesUnderWrites(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	if _, err := datagen.Seed(testCtx(t, time.Minute), src.Client, datagen.Spec{Keys: 30_000, Seed: 11, TTLFraction: 0.1, BinaryFraction: 0.02}); err != nil {
		t.Fatal(err)
	}
	p := newRedisPipeline(t, src, dst, "--keys-per-second", "15000")
	stop := writeWhile(t, src, &datagen.Writer{Keys: 2000, Seed: 1, Prefix: "w:", Rate: 3000})
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	time.Sleep(6 * time.Second) // the snapshot takes about 2s of it
	ops := stop()
	t.Logf("writer made %d operations", ops)
	waitConverged(t, p, 90*time.Second)
	if code := proc.Stop(); code != 0 {
		out, errOut := proc.Output()
		t.Fatalf("replicate exited %d on SIGTERM\n%s\n%s", code, out, errOut)
	}
	out, _ := proc.Output()
	if !strings.Contains(out, "live events") {
		t.Errorf("summary lacks live events:\n%s", out)
	}
}

// TestReplicateToDynamoDBConverges is the same with DynamoDB as the target:
// deletes become tombstones, expiries become expire_at.
func TestReplicateToDynamoDBConverges(t *testing.T) {
	t.Parallel()
	src := stack.NewRedis(t)
	if _, err := datagen.Seed(testCtx(t, time.Minute), src.Client, datagen.Spec{Keys: 3000, Seed: 12, TTLFraction: 0.1}); err != nil {
		t.Fatal(err)
	}
	p := newPipeline(t, src, "--create-table", "--key-type", "B")
	stop := writeWhile(t, src, &datagen.Writer{Keys: 300, Seed: 2, Prefix: "w:", Rate: 300})
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	time.Sleep(8 * time.Second)
	stop()
	waitConverged(t, p, 90*time.Second)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d on SIGTERM", code)
	}
}

// TestReplicateSurvivesSIGKILL kills the process with SIGKILL while a
// writer keeps changing keys: twice during the snapshot, once it has saved
// a cursor, and twice during live capture. Each restart resumes the
// snapshot from its cursor, or heals the time it was down; the end state
// is exact.
func TestReplicateSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	if _, err := datagen.Seed(testCtx(t, time.Minute), src.Client, datagen.Spec{Keys: 40_000, Seed: 13, TTLFraction: 0.1}); err != nil {
		t.Fatal(err)
	}
	p := newRedisPipeline(t, src, dst, "--keys-per-second", "4000")
	stop := writeWhile(t, src, &datagen.Writer{Keys: 2000, Seed: 3, Prefix: "w:", Rate: 2000})
	args := append([]string{"replicate"}, p.args...)
	until := func(proc *stack.Proc, _ string, cond func(stderr string) bool) {
		t.Helper()
		waitLog(t, proc, time.Minute, cond)
	}
	cursorSaved := func(string) bool { return snapshotCursorSaved(t, p.ckDir) }
	logged := func(msg string) func(string) bool { return func(s string) bool { return strings.Contains(s, msg) } }

	// 1: during the snapshot, after a cursor was saved.
	proc := stack.Start(t, nil, args...)
	until(proc, "a saved snapshot cursor", cursorSaved)
	proc.Kill()
	// 2: the restart resumes the snapshot; kill it again midway.
	proc = stack.Start(t, nil, args...)
	until(proc, "the snapshot resuming", logged("resuming snapshot"))
	time.Sleep(1500 * time.Millisecond)
	proc.Kill()
	// 3 and 4: during live capture; each restart heals the downtime.
	for range 2 {
		proc = stack.Start(t, nil, args...)
		until(proc, "live capture running after the snapshot", func(s string) bool {
			return strings.Contains(s, "snapshot published") || strings.Contains(s, "snapshot=false")
		})
		time.Sleep(time.Duration(500+rand.IntN(1500)) * time.Millisecond)
		proc.Kill()
	}
	proc = stack.Start(t, nil, args...)
	until(proc, "a heal of the downtime", logged("heal done"))
	time.Sleep(time.Second)
	stop()
	waitConverged(t, p, 2*time.Minute)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d on SIGTERM", code)
	}
}

// snapshotCursorSaved reports whether an unfinished snapshot's cursor is
// in the checkpoint directory.
func snapshotCursorSaved(t *testing.T, dir string) bool {
	var found bool
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "snapshot.ckpt") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		var pos struct {
			Cursor uint64 `json:"cursor"`
			Done   bool   `json:"done"`
		}
		if json.Unmarshal(raw, &pos) == nil && pos.Cursor != 0 && !pos.Done {
			found = true
		}
		return nil
	})
	return found
}

// TestReplicateHealsPubSubGaps kills cutover's pub/sub connection on the
// server (as Redis does to a subscriber that falls behind) and then
// flushes the database: each gap is detected, counted and healed, nothing
// written meanwhile is lost, and nothing the flush deleted survives.
func TestReplicateHealsPubSubGaps(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	if _, err := datagen.Seed(testCtx(t, time.Minute), src.Client, datagen.Spec{Keys: 5000, Seed: 14}); err != nil {
		t.Fatal(err)
	}
	p := newRedisPipeline(t, src, dst)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	time.Sleep(3 * time.Second) // snapshot done, live running
	stop := writeWhile(t, src, &datagen.Writer{Keys: 1000, Seed: 4, Prefix: "w:", Rate: 2000})
	ctx := testCtx(t, time.Minute)
	for range 3 {
		time.Sleep(time.Second)
		if err := src.Client.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
			t.Fatal(err)
		}
	}
	// FLUSHDB sends no notification at all: it must be noticed and its
	// deletes swept from the target.
	if err := src.Client.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	stop()
	waitConverged(t, p, 90*time.Second)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d", code)
	}
	out, errOut := proc.Output()
	if !strings.Contains(errOut, "FLUSHDB ran on the server") {
		t.Errorf("the FLUSHDB was not noticed:\n%s", errOut)
	}
	if !strings.Contains(errOut, "pub/sub") {
		t.Errorf("no gap was logged:\n%s", errOut)
	}
	if strings.Contains(out, "gaps healed                   0") {
		t.Errorf("no gap was healed:\n%s", out)
	}
}

// TestSnapshotStartsOverAfterSourceRestart: a SCAN cursor is a position in
// one server process' hash table. When the source restarts between two
// runs, the saved cursor means nothing to the new process (resuming from
// it could skip keys), so the snapshot starts over — and still converges.
func TestSnapshotStartsOverAfterSourceRestart(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	if _, err := datagen.Seed(testCtx(t, time.Minute), src.Client, datagen.Spec{Keys: 30_000, Seed: 15}); err != nil {
		t.Fatal(err)
	}
	p := newRedisPipeline(t, src, dst, "--keys-per-second", "5000")
	proc := stack.Start(t, nil, append([]string{"backfill"}, p.args...)...)
	for !snapshotCursorSaved(t, p.ckDir) {
		if proc.Exited() {
			t.Fatal("backfill finished before a cursor was saved")
		}
		time.Sleep(100 * time.Millisecond)
	}
	proc.Kill()
	src.Restart(t)
	res := stack.Run(testCtx(t, 2*time.Minute), t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("backfill after the restart exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "starting over") {
		t.Errorf("the snapshot did not notice the new server process:\n%s", res.Stderr)
	}
	waitConverged(t, p, time.Minute)
}

// waitLog waits until cond holds for what the process logged.
func waitLog(t *testing.T, proc *stack.Proc, within time.Duration, cond func(stderr string) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, errOut := proc.Output(); cond(errOut) {
			return
		}
		if time.Now().After(deadline) || proc.Exited() {
			_, errOut := proc.Output()
			t.Fatalf("the process did not log what was waited for within %v:\n%s", within, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNotificationsOffOnManagedRedis: where CONFIG SET is not allowed (as
// on managed Redis) and notifications are off, replicate stops at once and
// says exactly what to set.
func TestNotificationsOffOnManagedRedis(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, time.Minute)
	if err := src.Client.Do(ctx, "ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-config|set").Err(); err != nil {
		t.Fatal(err)
	}
	p := newRedisPipeline(t, src, dst, "--redis-username", "app")
	res := stack.RunEnv(ctx, t, []string{"REDIS_PASSWORD=pw"}, append([]string{"replicate"}, p.args...)...)
	for _, want := range []string{"keyspace notifications are off", "notify-keyspace-events", "KEA"} {
		if res.Code != 1 || !strings.Contains(res.Stderr, want) {
			t.Fatalf("exit %d, want 1 with %q in:\n%s", res.Code, want, res.Stderr)
		}
	}
}
