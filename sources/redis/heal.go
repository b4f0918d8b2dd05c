package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/internal/retry"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/sources"
)

// RequestHeal asks for a heal, e.g. because cutover was not running for a
// while; reason is logged.
func (l *Live) RequestHeal(reason string) {
	l.log.Warn("live capture: changes may have been missed, a heal will re-read every key", "reason", reason)
	l.gaps.Add(1)
	l.healRequested.Add(1)
	select {
	case l.gap <- struct{}{}:
	default: // one is pending already; it will cover this one too
	}
}

// watchFlushes notices FLUSHDB, FLUSHALL and SWAPDB, which send no
// notification: their call counters in INFO commandstats move.
func (l *Live) watchFlushes(ctx context.Context) error {
	t := time.NewTicker(l.opts.CheckEvery)
	defer t.Stop()
	for {
		if err := l.checkFlushes(ctx); err != nil && ctx.Err() == nil {
			l.log.Debug("live capture: INFO commandstats failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// checkFlushes asks for a heal if a flush ran since the last look. A
// drain calls it too: a flush acknowledged before the drain must be a
// heal request by the time the drain counts them.
func (l *Live) checkFlushes(ctx context.Context) error {
	info, err := l.cl.Info(ctx, "commandstats").Result()
	if err != nil {
		return err
	}
	cur := flushCounts(info)
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	if l.flushLast != nil {
		for cmd, n := range cur {
			if n != l.flushLast[cmd] {
				l.RequestHeal(fmt.Sprintf("%s ran on the server (no notification is sent for it)", strings.ToUpper(cmd)))
				break
			}
		}
	}
	l.flushLast = cur
	return nil
}

// flushCounts reads the call counts of the commands that empty a database
// without notifications.
func flushCounts(info string) map[string]int64 {
	out := map[string]int64{"flushdb": 0, "flushall": 0, "swapdb": 0}
	for _, line := range strings.Split(info, "\n") {
		for cmd := range out {
			prefix := "cmdstat_" + cmd + ":calls="
			if strings.HasPrefix(line, prefix) {
				rest := line[len(prefix):]
				if i := strings.IndexByte(rest, ','); i >= 0 {
					rest = rest[:i]
				}
				out[cmd], _ = strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			}
		}
	}
	return out
}

// healLoop runs a heal for each gap, once the snapshot is done and the
// subscription is up. Gaps that happen during a heal cause one more heal
// after it.
func (l *Live) healLoop(ctx context.Context) error {
	again := retry.New(0, retry.Initial(time.Second), retry.Max(30*time.Second))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.gap:
		}
		l.healing.Store(true)
		select {
		case <-ctx.Done():
			return nil
		case <-l.snapshotDone:
		}
		if !l.waitSubscribed(ctx) {
			return nil
		}
		// Every request counted now came before the heal's re-read.
		covers := l.healRequested.Load()
		err := l.heal(ctx)
		l.healing.Store(false)
		var pe *publishError
		switch {
		case err == nil:
			again.Reset()
			l.healCovered.set(covers)
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &pe):
			return err
		default:
			// Redis is down, restarting or failing over, or slots are
			// moving: try again later. Notifications resume when it is
			// back; the heal covers what happened meanwhile.
			wait := again.NextBackOff()
			l.log.Warn("heal failed, will retry", "err", err, "retry_in", wait)
			if !sources.Sleep(ctx, wait) {
				return nil
			}
			select {
			case l.gap <- struct{}{}:
			default:
			}
		}
	}
}

// healWhenReadable arranges for a heal that could not sweep because of
// refused keys to run again once one of them can be read. The retry loop
// watches for that; but a key refused for only a moment may have been
// read again already, while the heal still ran: those keys are looked at
// once more now, and the heal is asked for at once if one can be read.
func (l *Live) healWhenReadable(ctx context.Context, refused []string) {
	l.unreadable.healOnRecovery()
	if len(refused) == 0 {
		return
	}
	b, _, err := l.reader.Read(ctx, refused, pipeline.OriginLive, nil)
	if err != nil {
		return // the retry loop and the next gap cover it
	}
	still := 0
	for _, r := range b.Rejects {
		if r.Class == RejectUnreadable {
			still++
		}
	}
	if still < len(refused) {
		l.RequestHeal("keys refused during the heal can be read now: the heal that could not sweep runs again")
	}
}

// errHealIncomplete is a heal that could not read every key: it must not
// sweep, and is tried again.
var errHealIncomplete = errors.New("heal incomplete")

// heal re-reads every key and then broadcasts a truncate of everything
// older than the heal's start: the keys deleted during the gap.
//
// The truncate is only sent when the heal read every key it was given
// (the rejects included: an unreadable key is dead-lettered and left
// alone) and the version epoch did not move meanwhile. Otherwise the
// sweep could remove keys the heal did not re-read at a version newer
// than its start — keys in a cluster slot moving to another master, or
// keys read with a clock that stepped back — so the heal sweeps nothing
// and is tried again.
func (l *Live) heal(ctx context.Context) error {
	start := time.Now()
	// A server that restarted has forgotten a CONFIG SET: without this the
	// new subscription would hear nothing.
	if err := EnsureNotifications(ctx, l.cl, l.conn); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	epoch := l.opts.Epoch.Load()
	now, err := l.cl.Time(ctx).Result()
	if err != nil {
		return fmt.Errorf("heal: read server time: %w", redisconn.Explain(l.conn, err))
	}
	since := pipeline.ClockVersion(epoch, uint64(now.UnixMicro()), false)
	elsewhere := l.elsewhereReads.Load()
	l.log.Info("heal started: re-reading every key", "keys_per_second", l.opts.HealKeysPerSecond)
	var limiter *rate.Limiter
	if l.opts.HealKeysPerSecond > 0 {
		limiter = rate.NewLimiter(rate.Limit(l.opts.HealKeysPerSecond), max(l.opts.HealKeysPerSecond, l.opts.ScanCount))
	}
	var cursor, read uint64
	var unread unreadKeys
	for first := true; first || cursor != 0; first = false {
		keys, next, _, err := scanPage(ctx, l.cl, l.conn, l.log, l.opts.Filter, l.opts.Types, cursor, l.opts.ScanCount)
		if err != nil {
			return fmt.Errorf("heal: %w", err)
		}
		if limiter != nil && len(keys) > 0 {
			if err := limiter.WaitN(ctx, min(len(keys), limiter.Burst())); err != nil {
				return err
			}
		}
		n, err := l.readAndPublish(ctx, keys, pipeline.OriginLive)
		if err != nil {
			var pe *publishError
			if errors.As(err, &pe) {
				return err
			}
			return fmt.Errorf("heal: %w", err)
		}
		unread.elsewhere += n.elsewhere
		unread.forbidden += n.forbidden
		if room := maxRefused - len(unread.refused); room > 0 {
			unread.refused = append(unread.refused, n.refused[:min(room, len(n.refused))]...)
		}
		read += uint64(len(keys))
		cursor = next
	}
	if unread.total() > 0 {
		// Sweeping now would delete from the target keys the heal did not
		// re-read, as if they were gone.
		l.incomplete.Add(1)
		if unread.forbidden > 0 {
			l.log.Error("heal could not read every key: keys deleted during the gap are not swept from the target until it can",
				"keys", read, "unreadable", unread.forbidden, "in_moving_slots", unread.elsewhere,
				"fix", "grant the source user read access to every key (ACL key patterns) or leave the others out with --exclude; the unreadable keys are in the dead-letter topic")
		} else {
			l.log.Warn("heal could not read every key: nothing is swept this time; it will be tried again",
				"keys", read, "in_moving_slots", unread.elsewhere)
		}
		if unread.elsewhere == 0 {
			// Reading everything again would not help until the ACL
			// changes: the refused keys are tried again on their own, and
			// once one can be read the heal runs again.
			l.healWhenReadable(ctx, unread.refused)
			return nil
		}
		return fmt.Errorf("%w: %d keys in slots moving to another master", errHealIncomplete, unread.elsewhere)
	}
	if n := l.elsewhereReads.Load() - elsewhere; n > 0 {
		// A live read met a key another master serves now: a slot is
		// moving, and keys the heal's SCAN no longer saw here may have
		// moved with it.
		l.incomplete.Add(1)
		return fmt.Errorf("%w: %d keys read meanwhile are in slots moving to another master", errHealIncomplete, n)
	}
	if why, err := slotsSettled(ctx, l.cl, l.opts.Slots); err != nil {
		return fmt.Errorf("heal: %w", redisconn.Explain(l.conn, err))
	} else if why != "" {
		l.incomplete.Add(1)
		return fmt.Errorf("%w: %s", errHealIncomplete, why)
	}
	if e := l.opts.Epoch.Load(); e != epoch {
		l.incomplete.Add(1)
		return fmt.Errorf("%w: the version epoch moved on from %d to %d during the heal", errHealIncomplete, epoch, e)
	}
	l.barrier()
	truncate := pipeline.Event{
		Op: pipeline.OpTruncate, Origin: pipeline.OriginLive, Version: since,
		Scope:  &pipeline.Scope{Filter: l.opts.Filter, Slots: l.opts.Slots},
		Source: pipeline.SourceInfo{Connector: "redis", Name: l.opts.Name, DB: l.conn.DB, Node: l.conn.Addr, Time: now},
	}
	if err := l.pub.Broadcast(ctx, truncate, nil); err != nil {
		return &publishError{err}
	}
	l.heals.Add(1)
	l.healed.Add(int64(read))
	l.log.Info("heal done: every key re-read, older keys will be swept from the target", "keys", read, "took", time.Since(start).Round(time.Millisecond))
	return nil
}
