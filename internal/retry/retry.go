package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Default intervals. Waits grow by half (×1.5) per attempt, each
// randomised by ±50% so that callers that failed together do not retry
// together.
const (
	// DefaultInitial is the first wait unless Initial says otherwise.
	DefaultInitial = 100 * time.Millisecond
	// DefaultMax is the longest wait unless Max says otherwise.
	DefaultMax = 5 * time.Second
)

// Stop is what NextBackOff returns once a bounded backoff's time is up.
const Stop = backoff.Stop

// An Option changes a policy's intervals.
type Option func(*backoff.ExponentialBackOff)

// Initial sets the first wait; default DefaultInitial.
func Initial(d time.Duration) Option {
	return func(b *backoff.ExponentialBackOff) { b.InitialInterval = d }
}

// Max caps every wait; default DefaultMax.
func Max(d time.Duration) Option {
	return func(b *backoff.ExponentialBackOff) { b.MaxInterval = d }
}

// Notify is told of each failed attempt that will be retried, and how
// long the wait before the next one is. It may be nil.
type Notify func(err error, wait time.Duration)

// New returns a backoff for a loop that calls NextBackOff itself. After
// limit has passed since it was made (or last Reset) NextBackOff returns
// backoff.Stop; a limit of 0 never stops. It does not watch a context:
// the loop selects on ctx.Done() while it waits.
func New(limit time.Duration, opts ...Option) backoff.BackOff {
	return build(limit, opts)
}

func build(limit time.Duration, opts []Option) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     DefaultInitial,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          backoff.DefaultMultiplier,
		MaxInterval:         DefaultMax,
		MaxElapsedTime:      limit,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	for _, o := range opts {
		o(b)
	}
	b.Reset() // takes the first interval, as the options set it
	return b
}

// Forever runs op until it returns nil or a Permanent error, or ctx
// ends, waiting between attempts. It returns nil, the permanent error
// (unwrapped), or ctx's error.
func Forever(ctx context.Context, op func() error, notify Notify, opts ...Option) error {
	return run(ctx, 0, op, notify, opts)
}

// For runs op like Forever, but gives up once limit has passed since the
// first attempt: then it returns op's last error.
func For(ctx context.Context, limit time.Duration, op func() error, notify Notify, opts ...Option) error {
	return run(ctx, limit, op, notify, opts)
}

func run(ctx context.Context, limit time.Duration, op func() error, notify Notify, opts []Option) error {
	var n backoff.Notify
	if notify != nil {
		n = backoff.Notify(notify)
	}
	return backoff.RetryNotify(op, backoff.WithContext(build(limit, opts), ctx), n)
}

// Permanent marks err as not worth retrying: Forever and For return it
// at once.
func Permanent(err error) error { return backoff.Permanent(err) }
