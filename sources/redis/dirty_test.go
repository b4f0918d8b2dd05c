package redis

import (
	"context"
	"testing"
	"time"
)

// A drain's mark covers exactly the keys dirty when it is taken: it is
// reached once they are all taken (in order, several reads), not before;
// a key changed again while dirty does not move it; clear (which a heal
// answers) reaches it too.
func TestDirtyMarkIsReachedWhenEveryKeyDirtyThenIsTaken(t *testing.T) {
	d := newDirtySet()
	for _, k := range []string{"a", "b", "c", "a"} {
		d.add(k)
	}
	mark := d.mark()
	if mark != 3 {
		t.Fatalf("mark %d after three distinct keys", mark)
	}
	d.add("d") // after the mark
	reached := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		return d.taken.wait(ctx, mark) == nil
	}
	if got := d.take(2); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("took %v", got)
	}
	if reached() {
		t.Fatal("mark reached with c still dirty")
	}
	d.take(1)
	if !reached() {
		t.Fatal("mark not reached once a, b and c were taken")
	}
	d.add("e")
	m2 := d.mark()
	d.clear()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := d.taken.wait(ctx, m2); err != nil {
		t.Fatalf("clear did not reach the mark: %v", err)
	}
}
