package redis

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
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
