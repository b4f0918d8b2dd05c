package test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// readmeACL returns the arguments of the documented minimal ACL for the
// source user, read from docs/redis.md itself (it was in the README
// before the manual was split into pages) so that the test follows what
// users are told: `ACL SETUSER cutover on >password -@all …`.
func readmeACL(t *testing.T) []any {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "docs", "redis.md"))
	must(t, err)
	_, rest, ok := strings.Cut(string(raw), "`ACL SETUSER cutover ")
	if !ok {
		t.Fatal("docs/redis.md has no `ACL SETUSER cutover …` line")
	}
	rest, _, _ = strings.Cut(rest, "`")
	args := []any{"ACL", "SETUSER", "cutover"}
	for _, f := range strings.Fields(rest) {
		args = append(args, f)
	}
	return args
}

// TestMinimalACLUser: docs/redis.md says a source user needs exactly its
// minimal ACL, marked "(tested)", but the only ACL user of the tests had
// +@all. Here the user has exactly the documented ACL (read from the
// page), and backfill, replicate (notifications turned on by cutover
// with CONFIG SET, live changes, a heal after its pub/sub connection is
// killed, big hashes read in pieces, a stream, a drain) and reconcile all
// work, with nothing refused.
func TestMinimalACLUser(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	acl := readmeACL(t)
	for i, a := range acl {
		if a == ">password" {
			acl[i] = ">s3cret"
		}
	}
	t.Logf("%v", acl)
	must(t, src.Client.Do(ctx, acl...).Err())
	if _, err := datagen.Seed(ctx, src.Client, datagen.Spec{Keys: 2000, Seed: 77, TTLFraction: 0.1, BinaryFraction: 0.02}); err != nil {
		t.Fatal(err)
	}
	big := make([]any, 0, 30_000)
	for i := range 15_000 {
		big = append(big, fmt.Sprint("f", i), fmt.Sprint("v", i))
	}
	must(t, src.Client.HSet(ctx, "big:hash", big...).Err())
	// Few fields but many bytes: sized with MEMORY USAGE, then read in pieces.
	wide := make([]any, 0, 1000)
	for i := range 500 {
		wide = append(wide, fmt.Sprint("f", i), strings.Repeat("w", 1000))
	}
	must(t, src.Client.HSet(ctx, "wide:hash", wide...).Err())
	must(t, src.Client.XAdd(ctx, &goredis.XAddArgs{Stream: "events", ID: "1-1", Values: []any{"a", "1"}}).Err())
	must(t, src.Client.XGroupCreate(ctx, "events", "readers", "0").Err())

	env := []string{"REDIS_PASSWORD=s3cret"}
	p := newRedisPipeline(t, src, dst, "--redis-username", "cutover")
	res := stack.RunEnv(ctx, t, env, append([]string{"backfill"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("backfill as the minimal user exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	waitSame(t, src.Client, dst.Client, 10*time.Second)

	// A replicate after a backfill heals first (re-reads every key and
	// sweeps), then follows changes; a killed pub/sub connection is a gap,
	// healed again: all of it as the same user.
	proc := stack.Start(t, env, append([]string{"replicate"}, p.args...)...)
	healsDone := func() int { _, e := proc.Output(); return strings.Count(e, "heal done") }
	waitLog(t, proc, time.Minute, func(string) bool { return healsDone() >= 1 })
	strs, err := src.Client.Keys(ctx, "string:*").Result()
	must(t, err)
	must(t, src.Client.Set(ctx, "live:new", "v", time.Hour).Err())
	must(t, src.Client.Del(ctx, strs[:3]...).Err())
	must(t, src.Client.HSet(ctx, "big:hash", "f1", "changed").Err())
	must(t, src.Client.XAdd(ctx, &goredis.XAddArgs{Stream: "events", ID: "2-1", Values: []any{"b", "2"}}).Err())
	waitSame(t, src.Client, dst.Client, time.Minute)
	heals := healsDone()
	must(t, src.Client.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err())
	must(t, src.Client.Del(ctx, strs[3]).Err())
	waitLog(t, proc, time.Minute, func(string) bool { return healsDone() > heals })
	waitSame(t, src.Client, dst.Client, time.Minute)
	// drain is answered for the same user: the ACL grants its channel.
	if res := stack.RunEnv(ctx, t, env, append([]string{"drain", "--timeout", "1m"}, p.args...)...); res.Code != 0 {
		t.Fatalf("drain of the minimal user's replicate exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	out := stopReplicate(t, proc)
	_, errOut := proc.Output()
	if strings.Contains(out+errOut, "NOPERM") || !strings.Contains(out, "dead-lettered                 0") {
		t.Fatalf("something was refused to the minimal user:\n%s\n%s", out, errOut)
	}

	if res := stack.RunEnv(ctx, t, env, append([]string{"reconcile"}, p.args...)...); res.Code != 0 {
		t.Fatalf("reconcile as the minimal user exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
}
