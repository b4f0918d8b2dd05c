package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cutover/cutover/test/stack"
)

// TestNotifyMonitorSeesRegressions: the monitor must catch an older value
// written over a newer one, and one written after a delete (a
// resurrection with an older value), and nothing else — not a key that
// vanishes, not a key that comes back newer, not cutover's version keys.
// A monitor that reads nothing must say so.
func TestNotifyMonitorSeesRegressions(t *testing.T) {
	r := stack.NewRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := StartNotifyMonitor(ctx, r.Client, "cutover:v:")
	if err != nil {
		t.Fatal(err)
	}
	set := func(key string, seq int) {
		t.Helper()
		if err := r.Client.Set(ctx, key, fmt.Sprintf("%016d:x", seq), 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := m.Sync(ctx); err != nil { // one read per write: nothing coalesces
			t.Fatal(err)
		}
	}
	set("a", 5)
	set("a", 7)
	set("a", 3) // older over newer
	if err := r.Client.Del(ctx, "a").Err(); err != nil {
		t.Fatal(err)
	}
	set("a", 6) // back after a delete, older than seen before
	set("a", 9)
	if err := r.Client.HSet(ctx, "h", SeqField, "4").Err(); err != nil {
		t.Fatal(err)
	}
	set("cutover:v:a", 1) // ignored
	if err := r.Client.HSet(ctx, "h", SeqField, "2").Err(); err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	rep := m.Stop()
	if rep.Err != nil || rep.Regressions != 3 || rep.Keys != 2 {
		t.Fatalf("want 3 regressions on 2 keys and no error, got %s", rep)
	}

	empty := stack.NewRedis(t)
	m, err = StartNotifyMonitor(ctx, empty.Client, "")
	if err != nil {
		t.Fatal(err)
	}
	if rep := m.Stop(); rep.Err == nil {
		t.Fatalf("a monitor that read nothing reported no error: %s", rep)
	}
}
