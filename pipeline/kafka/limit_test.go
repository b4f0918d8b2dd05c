package kafka

import (
	"context"
	"testing"
	"time"
)

func TestLimitAdaptsToTheTarget(t *testing.T) {
	run := func(l *limit, calls int, throttled bool, took func(i int) time.Duration) {
		for i := range calls {
			if err := l.acquire(context.Background()); err != nil {
				t.Fatal(err)
			}
			l.release(throttled, took(i), 1)
		}
	}
	flat := func(int) time.Duration { return 5 * time.Millisecond }
	l := newLimit(256)
	if got := l.current(); got != 4 {
		t.Fatalf("starts at %d, want 4", got)
	}
	// Flat latency: it grows to the ceiling, and no further.
	run(l, 2000, false, flat)
	if got := l.current(); got != 256 {
		t.Fatalf("after 2000 calls at a flat 5ms the limit is %d, want the ceiling 256", got)
	}
	// A third of the calls slow (throttled and retried by the sink):
	// the median stays flat, and so does the limit.
	run(l, 600, true, func(i int) time.Duration {
		if i%3 == 0 {
			return 200 * time.Millisecond
		}
		return 5 * time.Millisecond
	})
	if got := l.current(); got != 256 {
		t.Fatalf("with a third of the calls slow the limit is %d, want it to stay at 256", got)
	}
	// Every call four times slower: it shrinks.
	run(l, 200, false, func(int) time.Duration { return 20 * time.Millisecond })
	if got := l.current(); got > 64 {
		t.Fatalf("with every call four times slower the limit is %d, want it well down", got)
	}
	// Then flat at the new latency: that becomes the baseline, and the
	// limit grows again, by one per round of calls.
	low := l.current()
	run(l, 5000, false, func(int) time.Duration { return 20 * time.Millisecond })
	if got := l.current(); got <= low {
		t.Fatalf("at a flat 20ms the limit stayed at %d", got)
	}
	// Never below one.
	l = newLimit(8)
	run(l, 64, false, func(int) time.Duration { return time.Millisecond })
	run(l, 200, false, func(int) time.Duration { return time.Second })
	if got := l.current(); got != 1 {
		t.Fatalf("the limit is %d, want 1", got)
	}
}
