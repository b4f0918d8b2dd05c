package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/sources"
)

// LivePublisher is what live capture publishes through:
// pipeline/kafka.Publisher implements it.
type LivePublisher interface {
	Publisher
	// Broadcast sends a truncate event to every partition.
	Broadcast(ctx context.Context, e pipeline.Event, onDurable func()) error
}

// LiveOptions configure live capture.
type LiveOptions struct {
	// Name is the pipeline's name.
	Name string
	// Filter and Types select keys, as for the snapshot.
	Filter pipeline.KeyFilter
	Types  []pipeline.Type
	// Readers read changed keys concurrently; default 2.
	Readers int
	// BatchSize is the most changed keys read in one round trip; default 256.
	BatchSize int
	// MaxDirty bounds the changed keys waiting to be read; beyond it
	// cutover stops tracking them one by one, and heals instead (a
	// re-scan), so memory stays bounded. Default 1,000,000.
	MaxDirty int
	// HealKeysPerSecond paces the re-scan that heals a gap, to protect
	// production; default 20,000. 0 keeps the default; negative means no
	// limit.
	HealKeysPerSecond int
	// ScanCount, MaxElements, MaxValueBytes, ChunkElements, ChunkBytes:
	// as for the snapshot.
	ScanCount     int
	MaxElements   int
	MaxValueBytes int
	ChunkElements int
	ChunkBytes    int
	// Epoch is the pipeline's version epoch (see pipeline.Version).
	Epoch *pipeline.Epoch
	// Slots are the cluster slots this node serves; a heal's truncate
	// covers only them. Nil for a standalone server.
	Slots [][2]int
	// CheckEvery is how often the pub/sub connection is pinged and FLUSHDB,
	// FLUSHALL and SWAPDB are looked for; default 1s.
	CheckEvery time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (o *LiveOptions) setDefaults() {
	if o.Readers <= 0 {
		o.Readers = 2
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.MaxDirty <= 0 {
		o.MaxDirty = 1_000_000
	}
	if o.HealKeysPerSecond == 0 {
		o.HealKeysPerSecond = 20_000
	}
	if o.ScanCount <= 0 {
		o.ScanCount = 1000
	}
	if o.CheckEvery <= 0 {
		o.CheckEvery = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// LiveStats are counters since live capture started.
type LiveStats struct {
	// Notifications received.
	Notifications int64
	// Events published: upserts and deletes of changed keys, and heal
	// re-reads.
	Events int64
	// Deletes among Events.
	Deletes int64
	// Rejected keys sent to the dead-letter topic.
	Rejected int64
	// Dirty keys waiting to be read now.
	Dirty int64
	// Gaps detected: moments when changes may have been missed.
	Gaps int64
	// Heals completed, and the keys they re-read.
	Heals      int64
	HealedKeys int64
	// Healing is true while a heal runs or waits for the snapshot.
	Healing bool
	// MaxMicros is the newest server time read, for the epoch check.
	MaxMicros uint64
}

// Live follows a Redis database's changes through keyspace notifications.
//
// A notification only says that a key changed; Live re-reads the key
// (whole value, TTL and version, atomically) and publishes its current
// state, or a delete when it is gone. Bursts on one key coalesce: a key
// waiting to be read is read once.
//
// Pub/sub is at-most-once: a dropped connection, a pub/sub client killed
// for its output buffer, or cutover being down all lose notifications,
// and FLUSHDB, FLUSHALL and SWAPDB send none. Live detects each such gap
// and heals it: it re-reads every key (paced by HealKeysPerSecond), then
// broadcasts a truncate event that removes, in the target, the keys older
// than the heal's start — the ones deleted during the gap.
type Live struct {
	cl     *goredis.Client
	conn   Conn
	opts   LiveOptions
	pub    LivePublisher
	reader *Reader
	log    *slog.Logger

	ps      *goredis.PubSub
	channel string

	dirty *dirtySet

	gap          chan struct{} // a heal is needed; buffered 1
	snapshotDone chan struct{}
	snapOnce     sync.Once
	healing      atomic.Bool

	notifications, events, deletes, rejected, gaps, heals, healed atomic.Int64
	maxMicros                                                     atomic.Uint64
}

// NewLive prepares live capture of the database cl is connected to.
func NewLive(cl *goredis.Client, conn Conn, opts LiveOptions, pub LivePublisher) *Live {
	opts.setDefaults()
	l := &Live{
		cl: cl, conn: conn, opts: opts, pub: pub, log: opts.Logger,
		channel:      fmt.Sprintf("__keyevent@%d__:", conn.DB),
		dirty:        newDirtySet(),
		gap:          make(chan struct{}, 1),
		snapshotDone: make(chan struct{}),
	}
	l.reader = NewReader(cl, conn, ReaderOptions{Name: opts.Name, Types: opts.Types, MaxElements: opts.MaxElements,
		MaxValueBytes: opts.MaxValueBytes, ChunkElements: opts.ChunkElements, ChunkBytes: opts.ChunkBytes,
		Epoch: opts.Epoch, Logger: opts.Logger})
	return l
}

// Stats returns the counters so far.
func (l *Live) Stats() LiveStats {
	return LiveStats{
		Notifications: l.notifications.Load(), Events: l.events.Load(), Deletes: l.deletes.Load(),
		Rejected: l.rejected.Load(), Dirty: int64(l.dirty.len()), Gaps: l.gaps.Load(), Heals: l.heals.Load(),
		HealedKeys: l.healed.Load(), Healing: l.healing.Load(), MaxMicros: l.maxMicros.Load(),
	}
}

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
		return fmt.Errorf("subscribe to keyspace notifications: %w", Explain(l.conn, err))
	}
	l.ps = ps
	return nil
}

// SnapshotDone tells live capture that the snapshot finished (or is not
// run): heals wait for it, because a heal during a snapshot would re-read
// what the snapshot is about to read anyway.
func (l *Live) SnapshotDone() { l.snapOnce.Do(func() { close(l.snapshotDone) }) }

// RequestHeal asks for a heal, e.g. because cutover was not running for a
// while; reason is logged.
func (l *Live) RequestHeal(reason string) {
	l.log.Warn("live capture: changes may have been missed, a heal will re-read every key", "reason", reason)
	l.gaps.Add(1)
	select {
	case l.gap <- struct{}{}:
	default: // one is pending already; it will cover this one too
	}
}

// Run follows changes until ctx ends (then it returns nil) or publishing
// fails. Subscribe must have been called.
func (l *Live) Run(ctx context.Context) error {
	if l.ps == nil {
		return fmt.Errorf("live capture: Subscribe was not called")
	}
	defer func() { l.ps.Close() }() //nolint:gosec // shutting down; receive may have replaced l.ps
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	start := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				cancel(err)
			}
		}()
	}
	start(l.receive)
	start(l.watchFlushes)
	start(l.healLoop)
	for range l.opts.Readers {
		start(l.readLoop)
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// receive reads notifications into the dirty set and notices gaps.
func (l *Live) receive(ctx context.Context) error {
	subscribed := true // Subscribe saw the first confirmation
	quiet := 0
	reconnect := backoff.NewExponentialBackOff()
	reconnect.InitialInterval = 100 * time.Millisecond
	reconnect.MaxInterval = 5 * time.Second
	reconnect.MaxElapsedTime = 0
	for {
		msg, err := l.ps.ReceiveTimeout(ctx, l.opts.CheckEvery)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				// Nothing arrived: make sure the connection is alive. Two
				// silent intervals after a PING mean it is not.
				if quiet++; quiet >= 3 {
					l.RequestHeal("pub/sub connection silent, reconnecting")
					l.resubscribe(ctx)
					subscribed = false // the new subscription's confirmation is expected
					quiet = 0
					continue
				}
				_ = l.ps.Ping(ctx) // the PONG arrives through Receive
				continue
			}
			if subscribed {
				// One gap per outage, however many reconnects it takes.
				l.RequestHeal("pub/sub connection lost: " + err.Error())
			}
			subscribed = false
			if !sources.Sleep(ctx, reconnect.NextBackOff()) { // go-redis reconnects on the next receive
				return nil
			}
			continue
		}
		reconnect.Reset()
		quiet = 0
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "psubscribe" {
				if subscribed {
					// A second confirmation: go-redis reconnected and
					// re-subscribed after a failure we did not see.
					l.RequestHeal("pub/sub reconnected")
				}
				subscribed = true
			}
		case *goredis.Message:
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
		}
	}
}

// resubscribe replaces a pub/sub connection that stopped answering.
func (l *Live) resubscribe(ctx context.Context) {
	l.ps.Close() //nolint:gosec // replacing a dead connection
	l.ps = l.cl.PSubscribe(ctx, l.channel+"*")
}

// readLoop reads changed keys and publishes their state.
func (l *Live) readLoop(ctx context.Context) error {
	for {
		keys := l.dirty.take(l.opts.BatchSize)
		if len(keys) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-l.dirty.wake:
			}
			continue
		}
		if err := l.readAndPublish(ctx, keys, pipeline.OriginLive); err != nil {
			return err
		}
	}
}

func (l *Live) readAndPublish(ctx context.Context, keys []string, origin pipeline.Origin) error {
	b, info, err := l.reader.Read(ctx, keys, origin, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		// A change we failed to read is a change we may have missed.
		l.RequestHeal("reading changed keys failed: " + err.Error())
		return nil
	}
	for i := range b.Events {
		e := &b.Events[i]
		if e.Op == pipeline.OpDelete {
			l.deletes.Add(1)
		}
		if m := e.Version.ClockMicros(); m > l.maxMicros.Load() {
			l.maxMicros.Store(m)
		}
	}
	l.events.Add(int64(len(b.Events)))
	l.rejected.Add(int64(len(b.Rejects)))
	if err := l.pub.Publish(ctx, b, nil); err != nil {
		return &publishError{err}
	}
	for _, big := range info.Big {
		err := l.reader.Stream(ctx, big, origin, nil, func(e pipeline.Event) error {
			l.events.Add(1)
			if err := l.pub.Publish(ctx, pipeline.Batch{Events: []pipeline.Event{e}}, nil); err != nil {
				return &publishError{err}
			}
			return nil
		})
		var pe *publishError
		switch {
		case err == nil, ctx.Err() != nil:
		case errors.As(err, &pe):
			return err
		default:
			l.RequestHeal("reading a big key failed: " + err.Error())
		}
	}
	return nil
}

// publishError is a failure to hand events to Kafka: unlike a Redis error,
// waiting does not fix it, so it stops live capture.
type publishError struct{ err error }

func (e *publishError) Error() string { return "live capture: publish: " + e.err.Error() }
func (e *publishError) Unwrap() error { return e.err }

// watchFlushes notices FLUSHDB, FLUSHALL and SWAPDB, which send no
// notification: their call counters in INFO commandstats move.
func (l *Live) watchFlushes(ctx context.Context) error {
	var last map[string]int64
	t := time.NewTicker(l.opts.CheckEvery)
	defer t.Stop()
	for {
		info, err := l.cl.Info(ctx, "commandstats").Result()
		if err == nil {
			cur := flushCounts(info)
			if last != nil {
				for cmd, n := range cur {
					if n != last[cmd] {
						l.RequestHeal(fmt.Sprintf("%s ran on the server (no notification is sent for it)", strings.ToUpper(cmd)))
						break
					}
				}
			}
			last = cur
		} else if ctx.Err() == nil {
			l.log.Debug("live capture: INFO commandstats failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
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

// healLoop runs a heal for each gap, once the snapshot is done. Gaps that
// happen during a heal cause one more heal after it.
func (l *Live) healLoop(ctx context.Context) error {
	retry := backoff.NewExponentialBackOff()
	retry.InitialInterval = time.Second
	retry.MaxInterval = 30 * time.Second
	retry.MaxElapsedTime = 0
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
		err := l.heal(ctx)
		l.healing.Store(false)
		var pe *publishError
		switch {
		case err == nil:
			retry.Reset()
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &pe):
			return err
		default:
			// Redis is down, restarting or failing over: try again
			// later. Notifications resume when it is back; the heal covers
			// what happened meanwhile.
			wait := retry.NextBackOff()
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

// heal re-reads every key and then broadcasts a truncate of everything
// older than the heal's start.
func (l *Live) heal(ctx context.Context) error {
	start := time.Now()
	// A server that restarted has forgotten a CONFIG SET: without this the
	// new subscription would hear nothing.
	if err := EnsureNotifications(ctx, l.cl, l.conn); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	now, err := l.cl.Time(ctx).Result()
	if err != nil {
		return fmt.Errorf("heal: read server time: %w", Explain(l.conn, err))
	}
	since := pipeline.ClockVersion(l.opts.Epoch.Load(), uint64(now.UnixMicro()), false)
	l.log.Info("heal started: re-reading every key", "keys_per_second", l.opts.HealKeysPerSecond)
	var limiter *rate.Limiter
	if l.opts.HealKeysPerSecond > 0 {
		limiter = rate.NewLimiter(rate.Limit(l.opts.HealKeysPerSecond), max(l.opts.HealKeysPerSecond, l.opts.ScanCount))
	}
	var cursor, read uint64
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
		if err := l.readAndPublish(ctx, keys, pipeline.OriginLive); err != nil {
			return err
		}
		read += uint64(len(keys))
		cursor = next
	}
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

// dirtySet holds changed keys waiting to be read, each once, in the order
// they first changed.
type dirtySet struct {
	mu    sync.Mutex
	keys  map[string]struct{}
	queue []string
	wake  chan struct{}
}

func newDirtySet() *dirtySet {
	return &dirtySet{keys: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

// add marks key dirty and returns how many keys are dirty.
func (d *dirtySet) add(key string) int {
	d.mu.Lock()
	if _, ok := d.keys[key]; !ok {
		d.keys[key] = struct{}{}
		d.queue = append(d.queue, key)
	}
	n := len(d.keys)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return n
}

// take removes up to n keys. A key changed again after take is marked
// dirty again, so it is read again: its newer state is never missed.
func (d *dirtySet) take(n int) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	n = min(n, len(d.queue))
	out := make([]string, n)
	copy(out, d.queue[:n])
	d.queue = d.queue[n:]
	for _, k := range out {
		delete(d.keys, k)
	}
	if len(d.queue) > 0 {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	if len(d.queue) == 0 && cap(d.queue) > 4096 {
		d.queue = nil // give back a large backlog's memory
	}
	return out
}

func (d *dirtySet) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keys = map[string]struct{}{}
	d.queue = nil
}

func (d *dirtySet) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.keys)
}
