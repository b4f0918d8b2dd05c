package test

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/test/stack"
)

// The tests of this file prove, each on a real Redis, the source events
// the README says live capture follows beyond plain writes and deletes:
// eviction (a keyevent notification, "evicted"), RESTORE (one, "restore"),
// and SWAPDB and FLUSHALL, which send none and must be noticed in INFO
// commandstats and healed. Each compares the target with the source key
// by key with reads written here, not with cutover's own reconcile.

// redisContents reads every data key of a database (the sink's version
// keys left out) as its type and a canonical form of its value, and
// whether it has a TTL, so that two databases compare with maps.Equal.
func redisContents(ctx context.Context, t *testing.T, cl *goredis.Client) map[string]string {
	t.Helper()
	out := map[string]string{}
	iter := cl.Scan(ctx, 0, "", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if strings.HasPrefix(k, "cutover:v:") {
			continue
		}
		typ, err := cl.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("TYPE %q: %v", k, err)
		}
		var val string
		switch typ {
		case "none":
			continue // gone since SCAN returned it
		case "string":
			val, err = cl.Get(ctx, k).Result()
		case "hash":
			var h map[string]string
			h, err = cl.HGetAll(ctx, k).Result()
			var fields []string
			for f, v := range h {
				fields = append(fields, f+"="+v)
			}
			slices.Sort(fields)
			val = strings.Join(fields, ",")
		case "list":
			var l []string
			l, err = cl.LRange(ctx, k, 0, -1).Result()
			val = strings.Join(l, ",")
		case "set":
			var s []string
			s, err = cl.SMembers(ctx, k).Result()
			slices.Sort(s)
			val = strings.Join(s, ",")
		case "zset":
			var z []goredis.Z
			z, err = cl.ZRangeWithScores(ctx, k, 0, -1).Result()
			for _, m := range z {
				val += fmt.Sprintf("%v:%v,", m.Member, m.Score)
			}
		default:
			val = "(type not compared)"
		}
		if err != nil && err != goredis.Nil { //nolint:errorlint // go-redis returns Nil unwrapped
			t.Fatalf("read %s %q: %v", typ, k, err)
		}
		ttl := cl.PTTL(ctx, k).Val() > 0
		out[k] = fmt.Sprintf("%s ttl=%v %s", typ, ttl, val)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitSame waits until the target holds exactly the source's keys and
// values, and fails with the first differences otherwise.
func waitSame(t *testing.T, src, dst *goredis.Client, within time.Duration) {
	t.Helper()
	ctx := testCtx(t, within+time.Minute)
	deadline := time.Now().Add(within)
	for {
		want, got := redisContents(ctx, t, src), redisContents(ctx, t, dst)
		if maps.Equal(want, got) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target does not match the source after %v:\n%s", within, diffContents(want, got))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// diffContents describes up to ten differences between two databases.
func diffContents(want, got map[string]string) string {
	var lines []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			lines = append(lines, fmt.Sprintf("missing in the target: %q", k))
		} else if g != w {
			lines = append(lines, fmt.Sprintf("%q differs: source %.60s, target %.60s", k, w, g))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			lines = append(lines, fmt.Sprintf("only in the target: %q", k))
		}
	}
	slices.Sort(lines)
	more := ""
	if len(lines) > 10 {
		more = fmt.Sprintf("\n… and %d more", len(lines)-10)
		lines = lines[:10]
	}
	return fmt.Sprintf("want %d keys, the target has %d\n%s%s", len(want), len(got), strings.Join(lines, "\n"), more)
}

// liveCounts reads, from replicate's summary, the live events, the
// deletes among them and the gaps detected: the rows
// "live events  N  D of them deletes" and "gaps healed  H  G gaps detected, …".
func liveCounts(t *testing.T, out string) (events, deletes, gaps int64) {
	t.Helper()
	num := func(re string) []int64 {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("summary has no row matching %s:\n%s", re, out)
		}
		var ns []int64
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(strings.ReplaceAll(s, ",", ""), 10, 64)
			ns = append(ns, n)
		}
		return ns
	}
	live := num(`live events\s+([0-9,]+)\s+([0-9,]+) of them deletes`)
	healed := num(`gaps healed\s+[0-9,]+\s+([0-9,]+) gaps detected`)
	return live[0], live[1], healed[0]
}

// seedStrings1K writes n string keys prefix0… of about 1 KB each.
func seedStrings1K(t *testing.T, cl *goredis.Client, prefix string, n int) {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	pipe := cl.Pipeline()
	for i := range n {
		pipe.Set(ctx, fmt.Sprintf("%s%d", prefix, i), fmt.Sprintf("%d-%s", i, strings.Repeat("v", 1000)), 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// startReplicate starts replicate and waits until its snapshot is
// published and the target holds the source's keys.
func startReplicate(t *testing.T, src, dst *stack.Redis, p pipelineArgs) *stack.Proc {
	t.Helper()
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "snapshot published") })
	waitSame(t, src.Client, dst.Client, time.Minute)
	return proc
}

// stopReplicate stops replicate with SIGTERM and returns its summary.
func stopReplicate(t *testing.T, proc *stack.Proc) string {
	t.Helper()
	code := proc.Stop()
	out, errOut := proc.Output()
	if code != 0 {
		t.Fatalf("replicate exited %d\n%s\n%s", code, out, errOut)
	}
	return out
}

// TestLiveCaptureFollowsEviction: keys the source evicts under maxmemory
// (allkeys-lru) reach the target as deletes, through their "evicted"
// notifications — not through a heal: no gap is detected.
func TestLiveCaptureFollowsEviction(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t, "--maxmemory-policy", "allkeys-lru"), stack.NewRedis(t)
	ctx := testCtx(t, 2*time.Minute)
	const n = 3000
	seedStrings1K(t, src.Client, "k:", n)
	p := newRedisPipeline(t, src, dst)
	proc := startReplicate(t, src, dst, p)

	// A limit about 1 MB under what the server uses evicts about a third
	// of the keys at once (CONFIG SET evicts down to the new limit).
	info := src.Client.Info(ctx, "memory").Val()
	used := infoField(t, info, "used_memory")
	must(t, src.Client.ConfigSet(ctx, "maxmemory", strconv.FormatInt(used-1<<20, 10)).Err())
	evicted := infoField(t, src.Client.Info(ctx, "stats").Val(), "evicted_keys")
	if evicted == 0 {
		t.Fatalf("the source evicted nothing (used_memory %d)", used)
	}
	left := src.Client.DBSize(ctx).Val()
	t.Logf("the source evicted %d keys, %d left", evicted, left)
	waitSame(t, src.Client, dst.Client, time.Minute)

	_, deletes, gaps := liveCounts(t, stopReplicate(t, proc))
	if gaps != 0 {
		t.Errorf("%d gaps detected: the evictions were healed, not followed", gaps)
	}
	if deletes < n-left {
		t.Errorf("%d live deletes for %d evicted keys", deletes, n-left)
	}
}

// infoField reads a number from an INFO section.
func infoField(t *testing.T, info, name string) int64 {
	t.Helper()
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("INFO %s = %q: %v", name, v, err)
			}
			return n
		}
	}
	t.Fatalf("INFO has no %s:\n%s", name, info)
	return 0
}

// TestLiveCaptureFollowsRestore: RESTORE of a new key, RESTORE REPLACE
// over an existing one (another type, with a TTL) reach the target as
// writes, through their "restore" notifications.
func TestLiveCaptureFollowsRestore(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 2*time.Minute)
	seedStrings1K(t, src.Client, "k:", 100)
	// The payloads come from a scratch database of the same server.
	scratch := goredis.NewClient(&goredis.Options{Addr: src.Addr, DB: 5})
	defer scratch.Close()
	must(t, scratch.HSet(ctx, "h", "f1", "one", "f2", "two").Err())
	must(t, scratch.RPush(ctx, "l", "a", "b", "c").Err())
	hash, err := scratch.Dump(ctx, "h").Result()
	must(t, err)
	list, err := scratch.Dump(ctx, "l").Result()
	must(t, err)

	p := newRedisPipeline(t, src, dst)
	proc := startReplicate(t, src, dst, p)
	must(t, src.Client.Restore(ctx, "restored:new", 0, hash).Err())
	must(t, src.Client.RestoreReplace(ctx, "k:7", time.Hour, list).Err())
	waitSame(t, src.Client, dst.Client, time.Minute)
	if typ := dst.Client.Type(ctx, "k:7").Val(); typ != "list" {
		t.Fatalf("k:7 is a %s in the target, want the restored list", typ)
	}

	events, _, gaps := liveCounts(t, stopReplicate(t, proc))
	if gaps != 0 || events < 2 {
		t.Errorf("%d live events and %d gaps: want the two RESTOREs followed as changes, no gap", events, gaps)
	}
}

// TestLiveCaptureHealsSwapdbAndFlushall: SWAPDB and FLUSHALL change the
// copied database without a single notification. Each is noticed (its
// INFO commandstats counter moves) and healed: after SWAPDB the target
// holds what the other database held, and after FLUSHALL only what was
// written since.
func TestLiveCaptureHealsSwapdbAndFlushall(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	seedStrings1K(t, src.Client, "db0:", 500)
	other := goredis.NewClient(&goredis.Options{Addr: src.Addr, DB: 1})
	defer other.Close()
	seedStrings1K(t, other, "db1:", 300)

	p := newRedisPipeline(t, src, dst)
	proc := startReplicate(t, src, dst, p)

	must(t, src.Client.Do(ctx, "SWAPDB", 0, 1).Err())
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "SWAPDB ran on the server") })
	waitSame(t, src.Client, dst.Client, time.Minute)
	if n := dst.Client.Exists(ctx, "db1:0").Val(); n != 1 {
		t.Fatal("after SWAPDB the target lacks the other database's keys")
	}

	must(t, src.Client.FlushAll(ctx).Err())
	must(t, src.Client.Set(ctx, "after-flushall", "v", 0).Err())
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "FLUSHALL ran on the server") })
	waitSame(t, src.Client, dst.Client, time.Minute)

	_, _, gaps := liveCounts(t, stopReplicate(t, proc))
	if gaps < 2 {
		t.Errorf("%d gaps detected, want one for SWAPDB and one for FLUSHALL", gaps)
	}
}
