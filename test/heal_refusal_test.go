package test

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/test/stack"
)

// TestRefusalOverBeforeTheHealEndsStillSweeps (found by review): a heal that met keys
// the source's user was refused (ACL) sweeps nothing and asks
// unreadableSet.healOnRecovery for another heal "once one can be read
// again". But retryUnreadable may have read those keys again already,
// while the heal was still scanning: the set is empty, nothing is ever
// read again, and the flag waits for a key that will never be recovered.
// The heal that could not sweep never runs again, and the keys deleted
// while cutover was stopped stay in the target for good.
//
// Here: 20,000 user:* keys and 200 other:* keys replicated; replicate
// stopped; user:0..user:99 deleted; the reader may read only user:* for
// the first page or two of the restart's heal (paced at 2,000 keys/s, so
// it lasts about 10 s); then everything again.
func TestRefusalOverBeforeTheHealEndsStillSweeps(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 5*time.Minute)
	if err := src.Client.Do(ctx, "ACL", "SETUSER", "reader", "on", ">pw", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	seedNumbered(t, src.Client, "user:", 20000)
	seedNumbered(t, src.Client, "other:", 200)
	p := newRedisPipeline(t, src, dst, "--redis-username", "reader", "--heal-keys-per-second", "2000")
	env := []string{"REDIS_PASSWORD=pw"}
	proc := stack.Start(t, env, append([]string{"replicate"}, p.args...)...)
	waitKeys(t, dst.Client, "user:*", 20000, 2*time.Minute)
	waitKeys(t, dst.Client, "other:*", 200, time.Minute)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d on SIGTERM", code)
	}
	deleteKeys(t, src.Client, "user:", 100)
	if err := src.Client.Do(ctx, "ACL", "SETUSER", "reader", "resetkeys", "~user:*").Err(); err != nil {
		t.Fatal(err)
	}
	proc = stack.Start(t, env, append([]string{"replicate"}, p.args...)...)
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "heal started") })
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "unreadable") })
	if err := src.Client.Do(ctx, "ACL", "SETUSER", "reader", "~*").Err(); err != nil {
		t.Fatal(err)
	}
	// The refused keys are read again while the heal still runs ...
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "can be read again") })
	// ... and the heal then ends without sweeping (if it ended first, the
	// keys read again ask for the heal themselves: the end is the same).
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "heal could not read every key") })
	// Everything can be read now: another heal must run and sweep the 100
	// keys deleted while replicate was stopped.
	deadline := time.Now().Add(90 * time.Second)
	for dataKeys(t, dst.Client, "user:*") != 19900 {
		if time.Now().After(deadline) {
			_, errOut := proc.Output()
			t.Fatalf("the target still holds %d user keys, want 19,900: the keys deleted while stopped were never swept (heals started: %d)\n%s",
				dataKeys(t, dst.Client, "user:*"), strings.Count(errOut, "heal started"), lastLines(errOut, 40))
		}
		time.Sleep(time.Second)
	}
	proc.Stop()
}
