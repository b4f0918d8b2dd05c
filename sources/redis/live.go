package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/internal/retry"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/sources"
)

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
	// ScanCount: as for the snapshot; MaxElements, MaxValueBytes,
	// ChunkElements, ChunkBytes: see ReaderOptions.
	ScanCount     int
	MaxElements   int
	MaxValueBytes int
	ChunkElements int
	ChunkBytes    int
	// MaxRecordBytes: as for the Reader.
	MaxRecordBytes int
	// Epoch is the pipeline's version epoch (see pipeline.Version).
	Epoch *pipeline.Epoch
	// Elsewhere, if set, is called when a read found keys this server no
	// longer serves (a cluster slot migrating): the cluster's topology is
	// changing, and whoever follows it should look now.
	Elsewhere func()
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
	// Healing is true while a heal runs or waits for the snapshot (or for
	// the subscription).
	Healing bool
	// Incomplete counts heals that could not read every key (keys in a
	// slot moving to another master) and so swept nothing; each is
	// followed by another heal.
	Incomplete int64
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
	conn   redisconn.Conn
	opts   LiveOptions
	pub    pipeline.Publisher
	reader *Reader
	log    *slog.Logger

	ps      *goredis.PubSub
	channel string

	// drain answers `cutover drain` (see drained): its tokens arrive on
	// the pub/sub connection of the notifications.
	drain *drainTokens

	dirty *dirtySet

	gap          chan struct{} // a heal is needed; buffered 1
	snapshotDone chan struct{}
	snapOnce     sync.Once
	healing      atomic.Bool

	// subscribed is true while the pub/sub subscription is confirmed;
	// subscribedWake is signaled when it becomes true. A heal waits for it:
	// changes made before the subscription is back would be missed.
	subscribed     atomic.Bool
	subscribedWake chan struct{}

	// unreadable holds keys the user was refused (ACL) while reading them:
	// they are read again until they can be.
	unreadable *unreadableSet

	// inflight is held (read) by every read of changed keys from before
	// it is sent until it is published: a sweep takes it (write) first,
	// so no read made before the sweep's start is published after it.
	inflight sync.RWMutex
	// elsewhereReads counts keys read here that another master serves:
	// a heal during which it moved must not sweep.
	elsewhereReads atomic.Int64

	// healRequested counts heal requests; healCovered is the count the
	// last heal that completed had seen when it started: every request up
	// to it has been answered by a full re-read.
	healRequested atomic.Int64
	healCovered   *gate

	// flushLast are the flush counters last seen (see checkFlushes).
	flushMu   sync.Mutex
	flushLast map[string]int64

	notifications, events, deletes, rejected, gaps, heals, healed, incomplete atomic.Int64
}

// NewLive prepares live capture of the database cl is connected to.
func NewLive(cl *goredis.Client, conn redisconn.Conn, opts LiveOptions, pub pipeline.Publisher) *Live {
	opts.setDefaults()
	l := &Live{
		cl: cl, conn: conn, opts: opts, pub: pub, log: opts.Logger,
		channel:        fmt.Sprintf("__keyevent@%d__:", conn.DB),
		dirty:          newDirtySet(),
		drain:          newDrainTokens(opts.Name, conn),
		healCovered:    newGate(),
		unreadable:     newUnreadableSet(),
		gap:            make(chan struct{}, 1),
		snapshotDone:   make(chan struct{}),
		subscribedWake: make(chan struct{}, 1),
	}
	l.reader = NewReader(cl, conn, ReaderOptions{Name: opts.Name, Types: opts.Types, MaxElements: opts.MaxElements,
		MaxValueBytes: opts.MaxValueBytes, ChunkElements: opts.ChunkElements, ChunkBytes: opts.ChunkBytes,
		MaxRecordBytes: opts.MaxRecordBytes, Epoch: opts.Epoch, Logger: opts.Logger})
	return l
}

// Stats returns the counters so far.
func (l *Live) Stats() LiveStats {
	return LiveStats{
		Notifications: l.notifications.Load(), Events: l.events.Load(), Deletes: l.deletes.Load(),
		Rejected: l.rejected.Load(), Dirty: int64(l.dirty.len()), Gaps: l.gaps.Load(), Heals: l.heals.Load(),
		HealedKeys: l.healed.Load(), Healing: l.healing.Load(), Incomplete: l.incomplete.Load(),
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

// SnapshotDone tells live capture that the snapshot finished (or is not
// run): heals wait for it, because a heal during a snapshot would re-read
// what the snapshot is about to read anyway.
func (l *Live) SnapshotDone() { l.snapOnce.Do(func() { close(l.snapshotDone) }) }

// Run follows changes until ctx ends (then it returns nil) or publishing
// fails. Subscribe must have been called.
func (l *Live) Run(ctx context.Context) error {
	if l.ps == nil {
		return fmt.Errorf("live capture: Subscribe was not called")
	}
	defer func() { l.ps.Close() }() //nolint:gosec // shutting down; receive may have replaced l.ps
	parent := ctx
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
	start(l.retryUnreadable)
	for range l.opts.Readers {
		start(l.readLoop)
	}
	wg.Wait()
	if parent.Err() != nil {
		return nil // stopped
	}
	// A part failed. Its error may wrap context.Canceled (a publish whose
	// records were canceled), and must still be returned: a live capture
	// that stops on its own must never look like one that was stopped.
	return context.Cause(ctx)
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

// readLoop reads changed keys and publishes their state.
func (l *Live) readLoop(ctx context.Context) error {
	for {
		// Taken under the read lock, so that barrier, once every key is
		// taken, waits for the read of the last ones too.
		l.inflight.RLock()
		keys := l.dirty.take(l.opts.BatchSize)
		if len(keys) == 0 {
			l.inflight.RUnlock()
			select {
			case <-ctx.Done():
				return nil
			case <-l.dirty.wake:
			}
			continue
		}
		unread, err := l.readAndPublish(ctx, keys, pipeline.OriginLive)
		// A heal is asked for before the read leaves the lock: a drain's
		// barrier, once it has the lock, counts it.
		var pe *publishError
		switch {
		case ctx.Err() != nil:
		case errors.As(err, &pe):
			l.inflight.RUnlock()
			return err
		case err != nil:
			// A change we failed to read is a change we may have missed.
			l.RequestHeal("reading changed keys failed: " + err.Error())
		case unread.elsewhere > 0:
			// Dead-lettered keys need no heal: a heal could not read them
			// either. Keys served elsewhere are read by the master that
			// takes their slot over, after the heal the move brings.
			l.RequestHeal(fmt.Sprintf("%d changed keys are in cluster slots moving to another master", unread.elsewhere))
		}
		l.inflight.RUnlock()
	}
}

// barrier returns once every read of changed keys in flight when it was
// called is published (a key taken from the dirty set is in flight). A sweep calls it before its truncate: a read made
// before the sweep's start and published after it could bring back a key
// the sweep is about to be told is gone (deleted during the gap, and so
// absent from the target, where no tombstone would stop it).
func (l *Live) barrier() {
	l.inflight.Lock()
	defer l.inflight.Unlock()
}

// unreadKeys counts the keys of a read that are neither events nor
// known to be gone.
type unreadKeys struct {
	// elsewhere: another master serves them now (a slot migrating).
	elsewhere int
	// forbidden: the user may not read them (ACL); dead-lettered.
	forbidden int
	// refused names some of the forbidden keys (at most maxRefused).
	refused []string
}

// maxRefused bounds the refused keys a heal keeps to look at again.
const maxRefused = 1000

func (u unreadKeys) total() int { return u.elsewhere + u.forbidden }

// readAndPublish reads keys and publishes their events and rejects, and
// says which keys it could not read. An error is either a *publishError
// (publishing failed: live capture must stop) or a read failure (the keys
// were not read).
func (l *Live) readAndPublish(ctx context.Context, keys []string, origin pipeline.Origin) (unread unreadKeys, err error) {
	b, info, err := l.reader.Read(ctx, keys, origin, nil)
	if err != nil {
		return unread, err
	}
	unread.elsewhere = len(info.Elsewhere)
	l.elsewhereReads.Add(int64(len(info.Elsewhere)))
	for _, r := range b.Rejects {
		if r.Class == RejectUnreadable {
			unread.forbidden++
			if len(unread.refused) < maxRefused {
				unread.refused = append(unread.refused, string(r.Key))
			}
			l.unreadable.add(string(r.Key))
		}
	}
	if len(info.Elsewhere) > 0 && l.opts.Elsewhere != nil {
		l.opts.Elsewhere()
	}
	for i := range b.Events {
		if b.Events[i].Op == pipeline.OpDelete {
			l.deletes.Add(1)
		}
	}
	l.events.Add(int64(len(b.Events)))
	l.rejected.Add(int64(len(b.Rejects)))
	if err := l.pub.Publish(ctx, b, nil); err != nil {
		return unread, &publishError{err}
	}
	for _, big := range info.Big {
		var pieceErr error
		err := l.reader.Stream(ctx, big, origin, nil, func(e pipeline.Event) error {
			l.events.Add(1)
			if err := l.pub.Publish(ctx, pipeline.Batch{Events: []pipeline.Event{e}}, nil); err != nil {
				pieceErr = &publishError{err}
				return pieceErr
			}
			return nil
		})
		var rej *RejectedKeyError
		switch {
		case err == nil:
		case pieceErr != nil:
			return unread, pieceErr
		case errors.As(err, &rej):
			l.rejected.Add(1)
			if err := l.pub.Publish(ctx, pipeline.Batch{Rejects: []pipeline.Reject{rej.Reject}}, nil); err != nil {
				return unread, &publishError{err}
			}
		default:
			return unread, err
		}
	}
	return unread, nil
}

// publishError is a failure to hand events to Kafka: unlike a Redis error,
// waiting does not fix it, so it stops live capture.
type publishError struct{ err error }

func (e *publishError) Error() string { return "live capture: publish: " + e.err.Error() }
func (e *publishError) Unwrap() error { return e.err }
