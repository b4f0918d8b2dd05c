package kafka

import (
	"context"
	"slices"
	"sync"
	"time"
)

// limit is the number of sink calls a worker runs at once, adapted to
// the target. It starts low and doubles each round trip while calls
// succeed (a slow start); once the target shows strain it grows by one
// per round of calls. It shrinks by a quarter, and stops growing, while
// the median time per event over the last calls is more than twice its
// baseline: a target
// slowing down under the load is not helped by more of it. A median, not
// a mean, so that the few calls a throttle or a retry makes slow do not
// count as the target slowing down. Throttling itself is the sink's pace
// to answer (writes per second, see sinks/dynamodb); here it only ends
// the slow start. The ceiling is the user's (--sink-concurrency).
type limit struct {
	ceiling int

	mu       sync.Mutex
	cur      float64
	active   int
	slow     bool // slow start: no strain seen yet
	strained bool // the last median was over twice the baseline: no growth
	samples  [limitWindow]time.Duration
	n        int           // samples taken
	base     time.Duration // the lowest median seen, drifting up slowly
	released chan struct{} // closed and replaced on every release
}

// limitWindow is how many calls a median covers; it is taken every half
// window.
const limitWindow = 64

func newLimit(ceiling int) *limit {
	return &limit{ceiling: ceiling, cur: float64(max(1, min(ceiling, 4))), slow: true, released: make(chan struct{})}
}

// acquire waits for a free slot.
func (l *limit) acquire(ctx context.Context) error {
	for {
		l.mu.Lock()
		if l.active < int(l.cur) {
			l.active++
			l.mu.Unlock()
			return nil
		}
		ch := l.released
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-ch:
		}
	}
}

// release frees a slot and adapts the limit to how the call went: whether
// the target throttled, and how long the call took for how many events.
func (l *limit) release(throttled bool, took time.Duration, events int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active--
	if throttled {
		l.slow = false
	}
	if events > 0 {
		l.samples[l.n%limitWindow] = took / time.Duration(events)
		l.n++
		if l.n >= limitWindow && l.n%(limitWindow/2) == 0 {
			med := median(l.samples[:])
			if l.base == 0 || med < l.base {
				l.base = med
			}
			l.strained = med > 2*l.base
			if l.strained {
				l.cur = max(1, l.cur*0.75)
				l.slow = false
			}
			// A lasting change of the round trip (another zone, say)
			// becomes the new baseline within some thousand calls.
			l.base += (med - l.base) / 32
		}
	}
	switch {
	case l.strained:
	case l.slow:
		l.cur++
	default:
		l.cur += 1 / l.cur
	}
	l.cur = min(l.cur, float64(l.ceiling))
	close(l.released)
	l.released = make(chan struct{})
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// current is the limit now.
func (l *limit) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.cur)
}
