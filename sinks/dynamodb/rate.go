package dynamodb

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// aimd paces writes and adapts the pace to throttling: additive increase,
// multiplicative decrease, as TCP does to congestion. DynamoDB says a table
// or partition is over capacity by throttling; hammering it with retries
// at the same rate only makes that worse.
//
// It looks at one-second windows. When more than 5% of a window's writes
// were throttled, the pace drops to 0.7× the current pace (or, without
// one, 0.7× the recent peak throughput). If a window that ran wholly at the
// new pace (two seconds on) is throttled just as much, slowing down did
// not help — the throttling is not about our rate (a hot partition, an
// outage, a test proxy) — so the cut is undone and the pace held, for 30s
// and twice as long each time that happens again, up to 5 min; the
// per-write backoff deals with the throttled calls meanwhile. A window
// with under 1% throttled raises the pace by 5% (at least 10 writes/s), up
// to the configured ceiling, or until no limit is left without one.
type aimd struct {
	lim     *rate.Limiter
	ceiling rate.Limit // rate.Inf when not configured

	mu           sync.Mutex
	windowStart  time.Time
	attempts     int64
	throttles    int64
	cutRatio     float64    // throttle ratio of the window that caused the last cut; 0 when none pending
	beforeCut    rate.Limit // the pace before that cut
	cutAt        time.Time
	holdUntil    time.Time
	hold         time.Duration // doubles each time a cut is found not to help
	peak         rate.Limit    // recent peak throughput, decaying
	lastThrottle time.Time

	delivered float64 // for tests
}

const (
	minWriteRate    = 10
	cutAbove        = 0.05
	raiseBelow      = 0.01
	cutFactor       = 0.7
	holdIneffective = 30 * time.Second
	maxHold         = 5 * time.Minute
	judgeAfter      = 2 * time.Second
	throttledFor    = 2 * time.Second
	minWindowCalls  = 20
)

func newAIMD(maxPerSecond int) *aimd {
	ceiling := rate.Inf
	if maxPerSecond > 0 {
		ceiling = rate.Limit(maxPerSecond)
	}
	return &aimd{lim: rate.NewLimiter(ceiling, max(1, maxPerSecond/10)), ceiling: ceiling}
}

// wait blocks until a write may start.
func (a *aimd) wait(ctx context.Context) error { return a.lim.Wait(ctx) }

// success records a write that went through.
func (a *aimd) success(now time.Time) { a.record(now, false) }

// throttle records a throttled write.
func (a *aimd) throttle(now time.Time) { a.record(now, true) }

func (a *aimd) record(now time.Time, throttled bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.windowStart.IsZero() {
		a.windowStart = now
	}
	a.attempts++
	if throttled {
		a.throttles++
		a.lastThrottle = now
	}
	d := now.Sub(a.windowStart)
	if d < time.Second || a.attempts < minWindowCalls {
		return
	}
	ratio := float64(a.throttles) / float64(a.attempts)
	throughput := rate.Limit(float64(a.attempts-a.throttles) / d.Seconds())
	a.windowStart, a.attempts, a.throttles = now, 0, 0
	a.peak = max(throughput, a.peak*0.9)
	cur := a.lim.Limit()
	judged := now.Sub(a.cutAt) >= judgeAfter // the window ran wholly at the new pace
	switch {
	case ratio > cutAbove && a.cutRatio > 0 && !judged:
		// Too early to tell whether the last cut helped.
	case ratio > cutAbove && a.cutRatio > 0 && ratio >= 0.8*a.cutRatio:
		// Slowing down did not ease the throttling: undo, and hold off
		// longer each time this happens again.
		a.set(a.beforeCut)
		a.cutRatio = 0
		a.hold = min(max(holdIneffective, 2*a.hold), maxHold)
		a.holdUntil = now.Add(a.hold)
	case ratio > cutAbove && now.After(a.holdUntil):
		// Cut from the current pace; from no pace at all, from what went
		// through (a window when little was offered must not drag the pace
		// down: only throttling may).
		base := cur
		if cur == rate.Inf {
			base = a.peak
		}
		a.beforeCut, a.cutRatio, a.cutAt = cur, ratio, now
		a.set(max(minWriteRate, base*cutFactor))
	case ratio < raiseBelow:
		a.cutRatio = 0
		if cur != a.ceiling {
			next := cur + max(minWriteRate, cur/20)
			if next >= a.ceiling || a.ceiling == rate.Inf && next > 4*throughput {
				next = a.ceiling // far above what we do: no need for a limit
			}
			a.set(next)
		}
	case judged:
		a.cutRatio = 0 // throttling eased: keep the new pace
		a.hold = 0
	}
}

func (a *aimd) set(l rate.Limit) {
	a.lim.SetLimit(l)
	if l != rate.Inf {
		a.lim.SetBurst(max(1, int(l/10)))
	}
}

// limit is the current pace in writes per second, 0 for none.
func (a *aimd) limit() float64 {
	l := a.lim.Limit()
	if l == rate.Inf {
		return 0
	}
	return float64(l)
}

// throttled reports whether the table is throttling us for our rate: a
// throttle in the last two seconds while the pace is cut (and the cut is
// not one found not to help). The worker stops fetching meanwhile.
func (a *aimd) throttled(now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.lastThrottle.IsZero() && now.Sub(a.lastThrottle) < throttledFor &&
		a.lim.Limit() < a.ceiling && !now.Before(a.holdUntil)
}
