package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/internal/retry"
	"github.com/cutover/cutover/sources"
)

// Subscribe turns notifications on if needed and subscribes. Call it
// before the snapshot starts, so that nothing written during the snapshot
// is missed.
func (l *Live) Subscribe(ctx context.Context) error {
	if err := EnsureNotifications(ctx, l.cl, l.conn); err != nil {
		return err
	}
	if err := l.reader.Prepare(ctx); err != nil {
		return err
	}
	ps := l.cl.PSubscribe(ctx, l.channel+"*")
	if _, err := ps.ReceiveTimeout(ctx, 10*time.Second); err != nil {
		ps.Close() //nolint:gosec // the subscribe error is the one to report
		return fmt.Errorf("subscribe to keyspace notifications: %w", redisconn.Explain(l.conn, err))
	}
	l.ps = ps
	l.setSubscribed(true)
	l.subscribeDrain(ctx)
	// The flush counters' baseline, taken once subscribed: a flush after
	// it is a heal, also for a drain that comes before the first look of
	// watchFlushes. (A server that refuses INFO is looked at again there.)
	_ = l.checkFlushes(ctx)
	return nil
}

// setSubscribed records whether the subscription is confirmed, and wakes
// a heal waiting for it.
func (l *Live) setSubscribed(ok bool) {
	l.subscribed.Store(ok)
	if ok {
		select {
		case l.subscribedWake <- struct{}{}:
		default:
		}
	}
}

// waitSubscribed returns once the subscription is confirmed, or false
// when ctx ends first.
func (l *Live) waitSubscribed(ctx context.Context) bool {
	for !l.subscribed.Load() {
		select {
		case <-ctx.Done():
			return false
		case <-l.subscribedWake:
		}
	}
	return true
}

// receive reads notifications into the dirty set and notices gaps.
//
// The subscription is marked down before a gap is reported, so that the
// heal the gap asks for waits until the subscription is confirmed again:
// a heal that re-read keys while nothing was listening would miss the
// changes made between its read of a key and the new subscription.
func (l *Live) receive(ctx context.Context) error {
	quiet := 0
	reconnect := retry.New(0, retry.Initial(100*time.Millisecond), retry.Max(5*time.Second))
	for {
		msg, err := l.ps.ReceiveTimeout(ctx, l.opts.CheckEvery)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				// Nothing arrived: make sure the connection is alive (two
				// silent intervals after a PING mean it is not), and that
				// a subscription sent is confirmed in time.
				if quiet++; quiet >= 3 {
					if l.subscribed.Load() {
						l.setSubscribed(false)
						l.RequestHeal("pub/sub connection silent, reconnecting")
					}
					l.resubscribe(ctx)
					quiet = 0
					continue
				}
				// The PONG arrives through Receive. A PING that cannot be
				// sent is a lost connection: go-redis would reconnect and
				// subscribe again behind our back, and the changes in
				// between would be a gap nobody heals.
				if err := l.ps.Ping(ctx); err != nil && ctx.Err() == nil {
					if l.subscribed.Load() {
						l.setSubscribed(false)
						l.RequestHeal("pub/sub connection lost: " + err.Error())
					}
					l.resubscribe(ctx)
					quiet = 0
				}
				continue
			}
			if l.subscribed.Load() {
				// One gap per outage, however many reconnects it takes.
				l.setSubscribed(false)
				l.RequestHeal("pub/sub connection lost: " + err.Error())
			}
			// A broken connection, or the server refused the subscription
			// (an ACL without the channel, say): subscribe again, on a new
			// connection, after a pause.
			if !sources.Sleep(ctx, reconnect.NextBackOff()) {
				return nil
			}
			l.log.Debug("live capture: subscribing again", "err", err)
			l.resubscribe(ctx)
			quiet = 0
			continue
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "psubscribe" {
				if l.subscribed.Load() {
					// A second confirmation: go-redis reconnected and
					// re-subscribed after a failure we did not see.
					l.setSubscribed(false)
					l.RequestHeal("pub/sub reconnected")
				}
				l.setSubscribed(true)
				reconnect.Reset()
				quiet = 0
			}
		case *goredis.Message:
			quiet = 0
			if m.Channel == l.drain.channel {
				// Every notification sent before the token has arrived.
				l.drain.arrived(m.Payload, l.dirty.mark())
				continue
			}
			l.notifications.Add(1)
			key := m.Payload
			if !l.opts.Filter.Keep(key) {
				continue
			}
			if n := l.dirty.add(key); n > l.opts.MaxDirty {
				l.dirty.clear()
				l.RequestHeal(fmt.Sprintf("more than %d changed keys waiting to be read", l.opts.MaxDirty))
			}
		case *goredis.Pong:
			if l.subscribed.Load() {
				// An answer proves the connection; while a subscription
				// is awaited, only its confirmation counts.
				quiet = 0
			}
		}
	}
}

// resubscribe replaces a pub/sub connection that stopped answering.
func (l *Live) resubscribe(ctx context.Context) {
	l.ps.Close() //nolint:gosec // replacing a dead connection
	l.ps = l.cl.PSubscribe(ctx, l.channel+"*")
	if l.drain.enabled {
		// Confirmed (or refused) through receive, like the pattern.
		_ = l.ps.Subscribe(ctx, l.drain.channel)
	}
}
