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
		// One reconcile may take long on a busy machine (DynamoDB Local
		// reads the whole table for each page of a parallel Scan): bound
		// it by the wait, not by a guess at its speed.
		last = stack.Run(testCtx(t, within+time.Minute), t, args...)
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
	w := &datagen.Writer{Keys: 2000, Seed: 1, Prefix: "w:", Rate: 3000}
	stop := writeWhile(t, src, w)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	// Writes during the snapshot (however long it takes), then after it.
	waitLog(t, proc, 2*time.Minute, func(s string) bool { return strings.Contains(s, "snapshot published") })
	during := w.Ops()
	waitOps(t, w, during+6000, 2*time.Minute)
	ops := stop()
	t.Logf("writer made %d operations, %d of them before the snapshot was published", ops, during)
	waitConverged(t, p, 90*time.Second)
	if code := proc.Stop(); code != 0 {
		out, errOut := proc.Output()
		t.Fatalf("replicate exited %d on SIGTERM\n%s\n%s", code, out, errOut)
	}
	out, _ := proc.Output()
	// The changes after the snapshot reached the target through live
	// capture (the summary prints the row whatever its count).
	if n := summaryCount(t, out, "live events"); n == 0 {
		t.Errorf("no live events after %d writes:\n%s", ops-during, out)
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
	w := &datagen.Writer{Keys: 300, Seed: 2, Prefix: "w:", Rate: 300}
	stop := writeWhile(t, src, w)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	// Writes during the snapshot, and after it.
	waitLog(t, proc, 2*time.Minute, func(s string) bool { return strings.Contains(s, "snapshot published") })
	waitOps(t, w, w.Ops()+1500, 2*time.Minute)
	stop()
	waitConverged(t, p, 90*time.Second)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d on SIGTERM", code)
	}
	out, _ := proc.Output()
	if n := summaryCount(t, out, "live events"); n == 0 {
		t.Errorf("no live events after the snapshot:\n%s", out)
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
	w := &datagen.Writer{Keys: 2000, Seed: 3, Prefix: "w:", Rate: 2000}
	stop := writeWhile(t, src, w)
	args := append([]string{"replicate"}, p.args...)
	until := func(proc *stack.Proc, _ string, cond func(stderr string) bool) {
		t.Helper()
		waitLog(t, proc, time.Minute, cond)
	}
	cursorSaved := func(string) bool { return snapshotCursorSaved(t, p.ckDir) }
	// scannedPast: the resumed snapshot saved a position beyond n keys
	// and is not done yet.
	scannedPast := func(n int64) func(string) bool {
		return func(string) bool {
			pos, ok := snapshotPos(t, p.ckDir)
			return ok && !pos.Done && pos.Scanned > n
		}
	}
	logged := func(msg string) func(string) bool { return func(s string) bool { return strings.Contains(s, msg) } }

	// 1: during the snapshot, after a cursor was saved.
	proc := stack.Start(t, nil, args...)
	until(proc, "a saved snapshot cursor", cursorSaved)
	proc.Kill()
	// 2: the restart resumes the snapshot; kill it again once it has
	// saved progress of its own.
	killedAt, _ := snapshotPos(t, p.ckDir)
	proc = stack.Start(t, nil, args...)
	until(proc, "the snapshot resuming", logged("resuming snapshot"))
	until(proc, "the resumed snapshot saving a position of its own", scannedPast(killedAt.Scanned))
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
	waitOps(t, w, w.Ops()+2000, time.Minute) // and writes after it
	stop()
	waitConverged(t, p, 2*time.Minute)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d on SIGTERM", code)
	}
}

// snapshotCursorSaved reports whether an unfinished snapshot's cursor is
// in the checkpoint directory.
func snapshotCursorSaved(t *testing.T, dir string) bool {
	pos, ok := snapshotPos(t, dir)
	return ok && pos.Cursor != 0 && !pos.Done
}

// savedSnapshot is the part of a Redis snapshot's checkpoint tests read.
type savedSnapshot struct {
	Cursor  uint64 `json:"cursor"`
	Done    bool   `json:"done"`
	Scanned int64  `json:"scanned"`
}

// snapshotPos reads the snapshot checkpoint in dir, if there is one.
func snapshotPos(t *testing.T, dir string) (savedSnapshot, bool) {
	t.Helper()
	var pos savedSnapshot
	var found bool
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "snapshot.ckpt") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		found = json.Unmarshal(raw, &pos) == nil
		return nil
	})
	return pos, found
}

// TestReplicateHealsPubSubGaps kills cutover's pub/sub connection on the
// server (as Redis does to a subscriber that falls behind) and then
// flushes the database: each gap is detected, counted and healed, nothing
// written meanwhile is lost, and nothing the flush deleted survives.
//
// Each kill must hit a subscribed connection (CLIENT KILL says how many
// it killed), and the next waits until cutover noticed the gap and
// subscribed again (its heal started): kills in one outage would be one
// gap.
func TestReplicateHealsPubSubGaps(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	if _, err := datagen.Seed(testCtx(t, time.Minute), src.Client, datagen.Spec{Keys: 5000, Seed: 14}); err != nil {
		t.Fatal(err)
	}
	p := newRedisPipeline(t, src, dst)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "snapshot published") })
	w := &datagen.Writer{Keys: 1000, Seed: 4, Prefix: "w:", Rate: 2000}
	stop := writeWhile(t, src, w)
	ctx := testCtx(t, 2*time.Minute)
	const kills = 3
	for i := range kills {
		if i > 0 {
			// cutover subscribed again: a heal starts only once the new
			// subscription is confirmed. (A pub/sub connection seen in
			// CLIENT LIST before that may be the one go-redis reconnected
			// by itself, which cutover is about to close: a kill of that
			// one alone is no gap, and was seen to fail this test.)
			waitLog(t, proc, time.Minute, func(s string) bool {
				last := strings.LastIndex(s, `reason="pub/sub`)
				return last >= 0 && strings.Contains(s[last:], "heal started")
			})
		}
		waitSubscribed(t, src)
		waitOps(t, w, w.Ops()+1000, time.Minute) // changes on this connection
		n, err := src.Client.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Int()
		if err != nil || n == 0 {
			t.Fatalf("CLIENT KILL TYPE pubsub killed %d connections: %v", n, err)
		}
		waitLog(t, proc, time.Minute, func(s string) bool { return strings.Count(s, `reason="pub/sub`) > i })
	}
	// FLUSHDB sends no notification at all: it must be noticed and its
	// deletes swept from the target.
	waitSubscribed(t, src)
	if err := src.Client.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "FLUSHDB ran on the server") })
	waitOps(t, w, w.Ops()+1000, time.Minute) // writes after the flush
	stop()
	waitConverged(t, p, 90*time.Second)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d", code)
	}
	out, errOut := proc.Output()
	if n := strings.Count(errOut, `reason="pub/sub`); n < kills {
		t.Errorf("%d pub/sub gaps logged for %d kills:\n%s", n, kills, errOut)
	}
	// A heal pending covers the gaps found meanwhile: at least one heal,
	// and every gap (the kills and the flush) detected.
	if n := summaryCount(t, out, "gaps healed"); n == 0 {
		t.Errorf("no gap was healed:\n%s", out)
	}
	if n := noteCount(t, out, "gaps detected"); n < kills+1 {
		t.Errorf("%d gaps detected, want at least %d (the kills and the flush):\n%s", n, kills+1, out)
	}
}

// waitSubscribed waits until a client is subscribed to r's keyspace
// notifications.
func waitSubscribed(t *testing.T, r *stack.Redis) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		list, err := r.Client.ClientList(testCtx(t, 10*time.Second)).Result()
		if err == nil && strings.Contains(list, "psub=1") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no client subscribed to keyspace notifications within a minute: %v\n%s", err, list)
		}
		time.Sleep(100 * time.Millisecond)
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
