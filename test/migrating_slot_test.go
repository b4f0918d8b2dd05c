package test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/test/stack"
)

// TestHealDuringSlotMigrationKeepsMovedKeys (found by review): a heal's truncate
// covers the slots its master had when the node started. While a slot is
// being migrated (MIGRATING on the old master, IMPORTING on the new one;
// CLUSTER SLOTS still names the old master, so no topology change is
// seen), the keys already moved are no longer on the old master: its
// heal's SCAN never returns them, so they are neither re-read nor counted
// as "elsewhere", and the heal completes and sweeps them from the target
// although the source still has every one. They come back only after the
// migration ends, the topology watcher notices, and the new master's heal
// re-reads them — for a stuck migration, never.
//
// The migration itself asks for that heal: MIGRATE notifies "del" on the
// old master, whose live capture then reads each moved key, gets ASK and
// requests a heal.
func TestHealDuringSlotMigrationKeepsMovedKeys(t *testing.T) {
	t.Parallel()
	cluster := stack.NewRedisCluster(t, 3, 0)
	dst := stack.NewRedis(t)
	ctx := testCtx(t, 5*time.Minute)
	masters := cluster.Masters(t)
	from, to := masters[0], masters[1]

	// A hash tag whose slot the first master serves.
	slots, err := cluster.Client.ClusterSlots(ctx).Result() //nolint:staticcheck // CLUSTER SLOTS is what cutover itself reads
	if err != nil {
		t.Fatal(err)
	}
	owner := func(slot int64) string {
		for _, s := range slots {
			if slot >= int64(s.Start) && slot <= int64(s.End) {
				return s.Nodes[0].Addr
			}
		}
		return ""
	}
	var tag string
	var slot int64
	for i := 0; tag == ""; i++ {
		k := fmt.Sprintf("{t%d}", i)
		if slot, err = cluster.Client.ClusterKeySlot(ctx, k).Result(); err != nil {
			t.Fatal(err)
		}
		if owner(slot) == from.Addr {
			tag = k
		}
	}
	var moved []string
	for i := range 50 {
		k := fmt.Sprintf("%s:%d", tag, i)
		moved = append(moved, k)
		if err := cluster.Client.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 500 {
		if err := cluster.Client.Set(ctx, fmt.Sprintf("other:%d", i), "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	p := newRedisPipeline(t, masters[2], dst)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	waitLog(t, proc, 2*time.Minute, func(s string) bool { return strings.Count(s, "snapshot published") == 3 })
	waitKeys(t, dst.Client, tag+":*", 50, time.Minute)

	// Start moving the slot, and move its keys; leave the slot migrating
	// (as a slow or interrupted reshard does).
	fromID, _ := from.Client.ClusterMyID(ctx).Result()
	toID, _ := to.Client.ClusterMyID(ctx).Result()
	if err := to.Client.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromID).Err(); err != nil {
		t.Fatal(err)
	}
	if err := from.Client.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", toID).Err(); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(to.Addr)
	args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
	for _, k := range moved {
		args = append(args, k)
	}
	if err := from.Client.Do(ctx, args...).Err(); err != nil {
		t.Fatal(err)
	}
	// The old master heals (asked for by its own live capture, see above):
	// wait until that heal ended, swept or not, and whatever it sent is
	// applied.
	waitLog(t, proc, time.Minute, func(s string) bool {
		for _, l := range strings.Split(s, "\n") {
			if (strings.Contains(l, "heal done") || strings.Contains(l, "heal failed")) && strings.Contains(l, from.Addr) {
				return true
			}
		}
		return false
	})
	// Every truncate sent so far (each snapshot's sweep and each heal's,
	// to each of the 4 partitions) must be applied before the target is
	// read: a sweep still in flight would let the keys it wrongly deletes
	// pass the check below. (This wait used to give up silently after 30s
	// and read the target anyway, and counted any 4 truncates, whoever
	// sent them.)
	waitLog(t, proc, time.Minute, func(s string) bool {
		sent := 4 * (strings.Count(s, "snapshot done: keys the target holds") + strings.Count(s, "heal done"))
		return strings.Count(s, "truncate applied") >= sent
	})

	// The source still has every moved key (on the importing master).
	for _, k := range moved {
		if n, err := cluster.Client.Exists(ctx, k).Result(); err != nil || n != 1 {
			t.Fatalf("source: %s exists=%d err=%v", k, n, err)
		}
	}
	missing := 0
	for _, k := range moved {
		if n, _ := dst.Client.Exists(ctx, k).Result(); n == 0 {
			missing++
		}
	}
	if missing > 0 {
		_, errOut := proc.Output()
		t.Errorf("%d of the %d keys of the migrating slot %d were swept from the target by the old master's heal, while the source has them all\n%s",
			missing, len(moved), slot, lastLines(errOut, 30))
	}
	proc.Stop()
}
