package dynamodb

import (
	"testing"
	"time"
)

// simulate drives the limiter for seconds of simulated time at the pace it
// allows (capped by offered), with throttled(rate) deciding what fraction
// of a second's writes the table throttles, and returns the pace at the
// end.
func simulate(a *aimd, start time.Time, seconds int, offered float64, throttled func(rate float64) float64) float64 {
	a.delivered = 0
	now := start
	for s := range seconds {
		pace := a.limit()
		if pace == 0 || pace > offered {
			pace = offered
		}
		n := int(pace)
		bad := int(float64(n) * throttled(pace))
		a.delivered += float64(n - bad)
		for i := range n {
			at := now.Add(time.Duration(s)*time.Second + time.Duration(i)*time.Second/time.Duration(n+1))
			if i < bad {
				a.throttle(at)
			} else {
				a.success(at)
			}
		}
	}
	return a.limit()
}

func TestAIMDFindsCapacity(t *testing.T) {
	// A table that takes 400 writes/s and throttles whatever is above it.
	capacity := func(r float64) float64 {
		if r <= 400 {
			return 0
		}
		return (r - 400) / r
	}
	a := newAIMD(0)
	pace := simulate(a, time.Unix(1000, 0), 120, 2000, capacity)
	if pace < 250 || pace > 600 {
		t.Fatalf("offered 2000 writes/s to a 400/s table, the pace settled at %.0f", pace)
	}
}

func TestAIMDDoesNotCollapseWhenSlowingDoesNotHelp(t *testing.T) {
	// A proxy that throttles 30% of writes whatever the rate, and a
	// producer that sometimes has almost nothing to write.
	random := func(float64) float64 { return 0.3 }
	a := newAIMD(0)
	start := time.Unix(1000, 0)
	var delivered, possible float64
	paused := 0
	for s := range 300 {
		offered := 1000.0
		if s%7 == 3 {
			offered = 25
		}
		simulate(a, start.Add(time.Duration(s)*time.Second), 1, offered, random)
		delivered += a.delivered
		possible += 0.7 * offered
		if a.throttled(start.Add(time.Duration(s+1) * time.Second)) {
			paused++
		}
	}
	if delivered < 0.85*possible {
		t.Fatalf("under load-independent throttling only %.0f%% of what could go through did", 100*delivered/possible)
	}
	if paused > 30 {
		t.Fatalf("fetching would stop %d of 300 seconds for throttling that slowing down does not ease", paused)
	}
}

func TestAIMDCeilingAndRecovery(t *testing.T) {
	a := newAIMD(100)
	start := time.Unix(1000, 0)
	simulate(a, start, 3, 1000, func(float64) float64 { return 0.5 })
	if a.limit() >= 100 {
		t.Fatalf("throttling did not lower the pace: %.0f", a.limit())
	}
	if !a.throttled(start.Add(3 * time.Second)) {
		t.Fatal("throttled() is false right after throttles")
	}
	simulate(a, start.Add(3*time.Second), 60, 1000, func(float64) float64 { return 0 })
	if a.limit() != 100 {
		t.Fatalf("without throttles the pace climbs back to the ceiling, not past it: %.0f", a.limit())
	}
	if a.throttled(start.Add(63 * time.Second)) {
		t.Fatal("throttled() still true long after the last throttle")
	}
}
