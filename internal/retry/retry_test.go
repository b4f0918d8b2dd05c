package retry

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
)

var errAgain = errors.New("again")

// The intervals are the options', from the first wait on: a backoff made
// with NewExponentialBackOff() and fields set afterwards started at the
// library's 500 ms whatever InitialInterval then said.
func TestNewFirstWaitIsInitial(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []Option
		initial time.Duration
		max     time.Duration
	}{
		{"defaults", nil, DefaultInitial, DefaultMax},
		{"initial", []Option{Initial(50 * time.Millisecond)}, 50 * time.Millisecond, DefaultMax},
		{"both", []Option{Initial(time.Second), Max(30 * time.Second)}, time.Second, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(0, tc.opts...)
			first := b.NextBackOff()
			if lo, hi := tc.initial/2, tc.initial*3/2; first < lo || first > hi {
				t.Fatalf("first wait %v, want within [%v, %v]", first, lo, hi)
			}
			for range 100 {
				if w := b.NextBackOff(); w > tc.max*3/2 || w == backoff.Stop {
					t.Fatalf("wait %v, want at most %v (Max ±50%%)", w, tc.max*3/2)
				}
			}
			b.Reset()
			if w := b.NextBackOff(); w > tc.initial*3/2 {
				t.Fatalf("first wait after Reset %v, want about %v", w, tc.initial)
			}
		})
	}
}

func TestNewStopsAfterLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(time.Minute)
		start := time.Now()
		for {
			w := b.NextBackOff()
			if w == backoff.Stop {
				break
			}
			time.Sleep(w)
		}
		// It stops rather than wait past the limit.
		if d := time.Since(start); d > time.Minute || d < time.Minute-DefaultMax*3/2 {
			t.Fatalf("stopped after %v, want shortly before 1m", d)
		}
	})
}

func TestForever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// An hour of failures (far beyond backoff's default 15 minutes):
		// Forever still retries, and returns nil once op passes.
		start := time.Now()
		var calls, notified int
		err := Forever(t.Context(), func() error {
			calls++
			if time.Since(start) < time.Hour {
				return errAgain
			}
			return nil
		}, func(err error, wait time.Duration) {
			notified++
			if !errors.Is(err, errAgain) || wait <= 0 || wait > DefaultMax*3/2 {
				t.Errorf("notify(%v, %v)", err, wait)
			}
		})
		if err != nil {
			t.Fatalf("Forever: %v", err)
		}
		if notified != calls-1 {
			t.Fatalf("%d calls, %d notified; want one notice per retried failure", calls, notified)
		}
	})
}

func TestForeverStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
		defer cancel()
		err := Forever(ctx, func() error { return errAgain }, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Forever after ctx ended = %v, want its error", err)
		}
	})
}

func TestPermanent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		denied := errors.New("denied")
		calls := 0
		err := Forever(t.Context(), func() error {
			calls++
			if calls == 3 {
				return Permanent(denied)
			}
			return errAgain
		}, nil)
		if err != denied { //nolint:errorlint // Permanent's wrapper is taken off
			t.Fatalf("Forever = %v, want the permanent error itself", err)
		}
		if calls != 3 {
			t.Fatalf("%d calls, want 3", calls)
		}
	})
}

func TestForGivesUpWithLastError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		calls := 0
		err := For(t.Context(), 2*time.Minute, func() error {
			calls++
			return errAgain
		}, nil, Initial(50*time.Millisecond), Max(time.Minute))
		if !errors.Is(err, errAgain) {
			t.Fatalf("For = %v, want the last error", err)
		}
		if d := time.Since(start); d > 2*time.Minute || d < 30*time.Second {
			t.Fatalf("gave up after %v, want before 2m, less the longest wait", d)
		}
		if calls < 5 {
			t.Fatalf("%d calls in 2m, want several", calls)
		}
	})
}
