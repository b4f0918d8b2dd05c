package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/test/stack"
)

// The tests of this file pin what the Redis source must do between
// commands and when it cannot read everything: each tells the story of a
// bug that lost, regressed or resurrected keys.

// seedNumbered writes n string keys prefix0..prefix<n-1>.
func seedNumbered(t *testing.T, cl *goredis.Client, prefix string, n int) {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	for start := 0; start < n; start += 500 {
		pipe := cl.Pipeline()
		for i := start; i < min(start+500, n); i++ {
			pipe.Set(ctx, fmt.Sprintf("%s%d", prefix, i), fmt.Sprintf("value-%d", i), 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// dataKeys counts the target's keys matching pattern, leaving out the
// sink's own version keys.
func dataKeys(t *testing.T, cl *goredis.Client, pattern string) int {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	n := 0
	iter := cl.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		if !strings.HasPrefix(iter.Val(), "cutover:v:") {
			n++
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitKeys waits until the target holds want keys matching pattern.
func waitKeys(t *testing.T, cl *goredis.Client, pattern string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := dataKeys(t, cl, pattern)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target holds %d keys matching %q after %v, want %d", n, pattern, within, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// deleteKeys deletes prefix0..prefix<n-1> on the source.
func deleteKeys(t *testing.T, cl *goredis.Client, prefix string, n int) {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	if err := cl.Del(testCtx(t, time.Minute), keys...).Err(); err != nil {
		t.Fatal(err)
	}
}

// replicatedThenDeleted replicates 1,000 keys k:0.. to a new Redis
// target, stops replicate, and deletes k:0..k:99 on the source.
func replicatedThenDeleted(t *testing.T) (src, dst *stack.Redis, p pipelineArgs) {
	t.Helper()
	src, dst = stack.NewRedis(t), stack.NewRedis(t)
	seedNumbered(t, src.Client, "k:", 1000)
	p = newRedisPipeline(t, src, dst)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	waitKeys(t, dst.Client, "k:*", 1000, time.Minute)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d on SIGTERM", code)
	}
	deleteKeys(t, src.Client, "k:", 100)
	return src, dst, p
}

// TestReplicateRestartHealsDeletes: `replicate --restart` used to take a
// new snapshot and nothing else. A snapshot copies what exists; it cannot
// see what was deleted while cutover was stopped, so those keys stayed in
// the target for good (reproduced: 1,000 keys replicated, 100 deleted
// while stopped, 100 extra keys in the target after the restart). A fresh
// snapshot of a pipeline that ran before now ends with a sweep.
func TestReplicateRestartHealsDeletes(t *testing.T) {
	t.Parallel()
	_, dst, p := replicatedThenDeleted(t)
	proc := stack.Start(t, nil, append([]string{"replicate", "--restart"}, p.args...)...)
	waitConverged(t, p, time.Minute)
	if n := dataKeys(t, dst.Client, "k:*"); n != 900 {
		t.Errorf("the target holds %d keys, want 900", n)
	}
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate --restart exited %d on SIGTERM", code)
	}
	if _, errOut := proc.Output(); !strings.Contains(errOut, "sweep=true") {
		t.Errorf("the restarted snapshot did not sweep:\n%s", errOut)
	}
}

// TestReplicateUnderANewAddressHeals: a snapshot checkpoint is named after
// the server's address, so a changed --redis-addr (or a cluster master
// that came back under another address) finds no checkpoint and used to
// start like a first run: no heal, and the keys deleted while cutover was
// stopped stayed in the target. The pipeline's own checkpoint says it ran
// before; the snapshot then sweeps.
func TestReplicateUnderANewAddressHeals(t *testing.T) {
	t.Parallel()
	src, dst, p := replicatedThenDeleted(t)
	// The same server, under another name.
	other := "localhost" + src.Addr[strings.LastIndexByte(src.Addr, ':'):]
	args := append([]string{"replicate"}, p.args...)
	args = append(args, "--redis-addr", other)
	proc := stack.Start(t, nil, args...)
	waitKeys(t, dst.Client, "k:*", 900, time.Minute)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d on SIGTERM", code)
	}
}

// replicateAs seeds n keys prefix0.. on src and starts replicate to dst as
// the ACL user "reader" (password "pw") allowed keyPattern and every
// channel; it returns once the snapshot is published and applied.
func replicateAs(t *testing.T, src, dst *stack.Redis, keyPattern, prefix string, n int) (pipelineArgs, *stack.Proc) {
	t.Helper()
	if err := src.Client.Do(testCtx(t, time.Minute), "ACL", "SETUSER", "reader", "on", ">pw", keyPattern, "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	seedNumbered(t, src.Client, prefix, n)
	p := newRedisPipeline(t, src, dst, "--redis-username", "reader")
	proc := stack.Start(t, []string{"REDIS_PASSWORD=pw"}, append([]string{"replicate"}, p.args...)...)
	waitKeys(t, dst.Client, prefix+"*", n, time.Minute)
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "snapshot published") })
	return p, proc
}

// TestUnreadableKeyNeverSweeps: with an ACL user allowed only ~user:*, one
// `SET other:x 1` on the source used to empty the target. The heal's page
// holding other:x failed with NOPERM, the failure only asked for another
// heal, the heal went on and broadcast its truncate, which swept every key
// of the unread page — and every later heal failed on the same page again
// (reproduced: 500 user:* keys, 0 left within 3 s). A key that cannot be
// read is now dead-lettered, never taken for deleted, and a heal that did
// not read every key sweeps nothing.
func TestUnreadableKeyNeverSweeps(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	p, proc := replicateAs(t, src, dst, "~user:*", "user:", 500)

	if err := src.Client.Set(ctx, "other:x", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// A gap: the heal re-reads every key, other:x included.
	if err := src.Client.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "heal could not read every key") })
	if n := dataKeys(t, dst.Client, "user:*"); n != 500 {
		t.Fatalf("the target holds %d user keys after a heal that could not read other:x, want 500", n)
	}
	// Changes still flow, and the heal does not loop over the keyspace.
	if err := src.Client.Set(ctx, "user:new", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitKeys(t, dst.Client, "user:*", 501, time.Minute)
	_, errOut := proc.Output()
	heals := strings.Count(errOut, "heal started")
	if code := proc.Stop(); code != 3 {
		t.Fatalf("replicate exited %d on SIGTERM, want 3 (stopped, some keys dead-lettered)", code)
	}
	out, errOut := proc.Output()
	if n := strings.Count(errOut, "heal started"); n > heals+1 || heals > 2 {
		t.Errorf("heals keep running: %d started before the stop, %d in all:\n%s", heals, n, errOut)
	}
	if summaryCount(t, out, "dead-lettered") < 1 {
		t.Errorf("other:x was not dead-lettered:\n%s", out)
	}
	if got := deadLetters(t, p.name, 1)["other:x"]; got != "unreadable" {
		t.Errorf("dead letter of other:x has class %q, want unreadable", got)
	}
}

// TestHealWaitsForTheSubscription: when pub/sub dropped, a heal used to
// start at once, while the subscription was still down; a change made
// after the heal re-read a key and before the subscription came back was
// never read, and the new subscription's confirmation asked for no second
// heal. Here the subscription is held down (the user may not subscribe
// for a while): no heal may start before it is back, and a change made
// meanwhile arrives.
func TestHealWaitsForTheSubscription(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	p, proc := replicateAs(t, src, dst, "~*", "k:", 200)

	// No channel may be subscribed to any more; reads still work.
	if err := src.Client.Do(ctx, "ACL", "SETUSER", "reader", "resetchannels").Err(); err != nil {
		t.Fatal(err)
	}
	if err := src.Client.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "pub/sub connection lost") })
	// A heal that started now would re-read the keys before the changes
	// below and never see them. The heal is pending once the progress
	// line says healing=true; a wrong heal starts within milliseconds of
	// that, so two progress lines (one interval apart) saying so with no
	// heal started show it waits.
	waitLog(t, proc, time.Minute, func(s string) bool {
		return strings.Count(s, "healing=true") >= 2 || strings.Contains(s, "heal started")
	})
	if _, errOut := proc.Output(); strings.Contains(errOut, "heal started") {
		t.Fatalf("a heal started while the subscription was down:\n%s", errOut)
	}
	if err := src.Client.Set(ctx, "k:0", "changed while unsubscribed", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := src.Client.Del(ctx, "k:1").Err(); err != nil {
		t.Fatal(err)
	}
	if err := src.Client.Do(ctx, "ACL", "SETUSER", "reader", "&*").Err(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "heal done") })
	waitConverged(t, p, time.Minute)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d on SIGTERM", code)
	}
}

// TestBigKeyLandsWholeOrNotAtAll: a big key travels in pieces. One element
// too large for a Kafka record used to make its piece a dead letter while
// the other pieces applied: the target held part of a hash or a set, or a
// list cut short, at the key's full version, and nothing ever repaired it.
// Now every piece fits a record unless one element alone cannot; then the
// key is dead-lettered whole and the pieces already applied are taken
// back.
func TestBigKeyLandsWholeOrNotAtAll(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	huge := strings.Repeat("h", 1_200_000)
	pipe := src.Client.Pipeline()
	for i := range 30_000 {
		elem := fmt.Sprintf("element-%06d-%s", i, strings.Repeat("x", 40))
		if i == 15_000 {
			elem = huge
		}
		pipe.RPush(ctx, "big:list", elem)
		pipe.HSet(ctx, "big:hash", fmt.Sprintf("f%06d", i), elem)
		pipe.RPush(ctx, "fine:list", fmt.Sprintf("element-%06d-%s", i, strings.Repeat("y", 40)))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	seedNumbered(t, src.Client, "k:", 100)
	p := newRedisPipeline(t, src, dst)
	res := stack.Run(ctx, t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 3 {
		t.Fatalf("backfill exited %d, want 3 (done, some keys dead-lettered)\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, k := range []string{"big:list", "big:hash"} {
		if n, err := dst.Client.Exists(ctx, k).Result(); err != nil || n != 0 {
			t.Errorf("%s: the target holds part of it (exists=%d, %v): all pieces or none", k, n, err)
		}
	}
	if n, err := dst.Client.LLen(ctx, "fine:list").Result(); err != nil || n != 30_000 {
		t.Errorf("fine:list has %d elements (%v), want 30000", n, err)
	}
	if n := dataKeys(t, dst.Client, "k:*"); n != 100 {
		t.Errorf("the target holds %d small keys, want 100", n)
	}
	dl := deadLetters(t, p.name, 2)
	for _, k := range []string{"big:list", "big:hash"} {
		if dl[k] != "oversize" {
			t.Errorf("dead letter of %s: class %q, want oversize (all: %v)", k, dl[k], dl)
		}
	}
}

// deadLetters reads the pipeline's dead-letter topic until it has at
// least n records (or a minute passed) and returns each key's class.
func deadLetters(t *testing.T, name string, n int) map[string]string {
	t.Helper()
	got, _ := readDeadLetters(t, name, n, "cutover.error.class", time.Minute)
	return got
}

// readDeadLetters reads the pipeline's dead-letter topic until it has read
// at least n records or d has passed. It returns each record key's header
// and the number of records read.
func readDeadLetters(t *testing.T, name string, n int, header string, d time.Duration) (map[string]string, int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers(t)...), kgo.ConsumeTopics("cutover."+name+".dlq"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	got := map[string]string{}
	records := 0
	for records < n {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		for _, rec := range f.Records() {
			records++
			for _, h := range rec.Headers {
				if h.Key == header {
					got[string(rec.Key)] = string(h.Value)
				}
			}
		}
	}
	return got, records
}

// TestClockSteppedBackWhileReplicating: versions are the source server's
// clock, which was compared with the newest published time only at start.
// A clock stepped back while replicate ran (an NTP step, a failover to a
// machine whose clock is behind) made every later write and delete of a
// recently written key lose against its older version: skipped at the
// sink, for good. The step is now seen within a second: a new epoch, and
// a heal of the node.
func TestClockSteppedBackWhileReplicating(t *testing.T) {
	t.Parallel()
	src, clock := stack.NewRedisClock(t)
	dst := stack.NewRedis(t)
	seedNumbered(t, src.Client, "k:", 200)
	p := newRedisPipeline(t, src, dst)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	waitKeys(t, dst.Client, "k:*", 200, time.Minute)
	ctx := testCtx(t, 2*time.Minute)
	// Fresh writes, whose versions are the clock's time now...
	for i := range 20 {
		must(t, src.Client.Set(ctx, fmt.Sprintf("k:%d", i), "before the step", 0).Err())
	}
	waitLog(t, proc, time.Minute, func(string) bool {
		v, err := dst.Client.Get(ctx, "k:19").Result()
		return err == nil && v == "before the step"
	})
	// ...then the clock goes back 5 s, and the same keys change again.
	if err := clock.Step(ctx, -5*time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		must(t, src.Client.Set(ctx, fmt.Sprintf("k:%d", i), "after the step", 0).Err())
	}
	must(t, src.Client.Del(ctx, "k:10", "k:11").Err())
	waitConverged(t, p, time.Minute)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d on SIGTERM", code)
	}
	if _, errOut := proc.Output(); !strings.Contains(errOut, "clock stepped backwards") {
		t.Errorf("the step was not noticed:\n%s", errOut)
	}
}

// TestOneSourcePerPipeline: two sources of one pipeline at once (a
// backfill started while replicate runs) would each start their own
// version epoch, and the later one would outrank the other's newer
// reads. The second is refused, and says why.
func TestOneSourcePerPipeline(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	seedNumbered(t, src.Client, "k:", 100)
	p := newRedisPipeline(t, src, dst)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	waitKeys(t, dst.Client, "k:*", 100, time.Minute)
	res := stack.Run(testCtx(t, time.Minute), t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 1 || !strings.Contains(res.Stderr, "another cutover source of pipeline") {
		t.Errorf("a backfill while replicate runs: exit %d, want 1 with the reason\n%s", res.Code, res.Stderr)
	}
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d on SIGTERM", code)
	}
	// Once it stopped, the pipeline's source may run again.
	if res := stack.Run(testCtx(t, time.Minute), t, append([]string{"backfill"}, p.args...)...); res.Code != 0 {
		t.Errorf("backfill after replicate stopped: exit %d\n%s", res.Code, res.Stderr)
	}
}

// TestRepairBeforeTheFirstReplicate: reconcile --repair writes to the
// target, but a replicate started afterwards took itself for the first
// run of the pipeline: its snapshot swept nothing, and keys a repair had
// copied and the source deleted since stayed in the target for good (the
// workflow checker found 178 of them). A repair now records that the
// pipeline wrote to its target.
func TestRepairBeforeTheFirstReplicate(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	seedNumbered(t, src.Client, "k:", 200)
	p := newRedisPipeline(t, src, dst)
	res := stack.Run(testCtx(t, 2*time.Minute), t, append([]string{"reconcile", "--repair"}, p.args...)...)
	if res.Code != 4 && res.Code != 0 {
		t.Fatalf("reconcile --repair exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	waitKeys(t, dst.Client, "k:*", 200, time.Minute)
	deleteKeys(t, src.Client, "k:", 20)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	waitConverged(t, p, time.Minute)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d", code)
	}
}
