package redis

import (
	"context"
	"log/slog"
	"time"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/internal/retry"
)

// retryRead runs op until it succeeds, fails permanently, or two
// minutes of backoff have passed. Connection and server-busy errors are
// transient; authentication and permission errors are not.
func retryRead(ctx context.Context, log *slog.Logger, what string, op func() error) error {
	return retry.For(ctx, 2*time.Minute, func() error {
		err := op()
		if err == nil || transient(err) {
			return err
		}
		return retry.Permanent(err)
	}, func(err error, wait time.Duration) {
		log.Warn("redis call failed, retrying", "call", what, "err", err, "retry_in", wait)
	}, retry.Initial(100*time.Millisecond), retry.Max(5*time.Second))
}

// transient reports whether a read retries a Redis error: one that may
// pass by itself, and a reply it does not know (for as long as
// retryRead's two minutes). A read stops at once when its context ended,
// and on a denial (the ACL user may not run a command the read needs —
// TIME in the read script, say) or a refusal of the value (WRONGTYPE):
// no retry will change those.
func transient(err error) bool {
	switch redisconn.Classify(err) {
	case redisconn.Transient, redisconn.Unknown:
		return true
	case redisconn.Stopped, redisconn.Denied, redisconn.Refused:
		return false
	}
	return false
}
