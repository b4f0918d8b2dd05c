package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
)

// SnapshotOptions configure a Snapshot.
type SnapshotOptions struct {
	// Name is the pipeline's name: it prefixes checkpoint names and is the
	// events' source name.
	Name string
	// Filter selects keys by pattern.
	Filter pipeline.KeyFilter
	// Types selects keys by type; empty means every type cutover carries.
	Types []pipeline.Type
	// ScanCount is the COUNT hint of each SCAN; default 1000.
	ScanCount int
	// Readers is how many pages are read concurrently; default 4. Each
	// reads its page in one pipelined round trip.
	Readers int
	// MaxElements and MaxValueBytes: the largest collection and string
	// copied; see ReaderOptions, whose defaults a zero takes (the CLI
	// passes source.redis.max_elements and max_value_bytes).
	MaxElements   int
	MaxValueBytes int
	// ChunkElements and ChunkBytes: collections larger than this are read
	// and sent in pieces (see Reader.Stream); MaxRecordBytes bounds a
	// piece.
	ChunkElements  int
	ChunkBytes     int
	MaxRecordBytes int
	// KeysPerSecond paces the walk to protect production; 0 means no limit.
	KeysPerSecond int
	// Restart ignores an unfinished snapshot's saved cursor and starts over.
	Restart bool
	// Sweep makes a snapshot that starts afresh (not one that resumes a
	// saved cursor) end with a truncate of every key older than its start
	// (in Slots, on a cluster node): the keys the target holds that were
	// deleted in the source before the snapshot. A snapshot that read
	// every key is then as good as a heal. See Swept.
	Sweep bool
	Slots [][2]int
	// BeforeSweep, if set, runs before the truncate is sent: live
	// capture's barrier, so that no read it made before the snapshot
	// started is published after the truncate.
	BeforeSweep func()
	// Redirect, if set, reads the keys this server no longer serves (a
	// cluster slot migrating while the snapshot runs) through a client
	// that follows the cluster's redirections. Without it they are
	// counted in SnapshotProgress.Elsewhere, and the caller must heal.
	Redirect *Reader
	// CheckpointEvery is how often the durable cursor is saved; default 1s.
	// The cursor is also saved when the snapshot ends.
	CheckpointEvery time.Duration
	// Epoch is the pipeline's version epoch (see pipeline.Version).
	Epoch *pipeline.Epoch
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (o *SnapshotOptions) setDefaults() {
	if o.ScanCount <= 0 {
		o.ScanCount = 1000
	}
	if o.Readers <= 0 {
		o.Readers = 4
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// SnapshotProgress counts what a snapshot has done so far.
type SnapshotProgress struct {
	// Total is DBSIZE when the snapshot started (keys come and go while it
	// runs, so Scanned may end above or below it).
	Total int64
	// Scanned keys returned by SCAN, including those of an earlier run
	// that this one resumed.
	Scanned int64
	// Events read and handed to the publisher.
	Events int64
	// Rejected keys (too big, unsupported type) sent to the dead-letter
	// topic.
	Rejected int64
	// Filtered keys skipped by pattern or type.
	Filtered int64
	// Vanished keys deleted between SCAN and read.
	Vanished int64
	// BigKeys read in pieces (their pieces count in Events).
	BigKeys int64
	// Elsewhere keys were not read: another master of the cluster serves
	// them now (see SnapshotOptions.Redirect).
	Elsewhere int64
	// Resumed is true when the snapshot continued a saved cursor.
	Resumed bool
	// Done is true once the snapshot is published and its end saved.
	Done bool
}

// Snapshot copies one Redis logical database into the pipeline.
type Snapshot struct {
	cl   *goredis.Client
	conn redisconn.Conn
	opts SnapshotOptions
	pub  pipeline.Publisher
	ck   checkpoint.Store
	log  *slog.Logger

	total, scanned, events, rejected, filtered, vanished, bigKeys, elsewhere, forbidden atomic.Int64
	resumed, done, swept                                                                atomic.Bool

	reader *Reader

	mu      sync.Mutex
	durable snapshotPosition // the latest position whose events are all acknowledged
	dirty   bool
}

// NewSnapshot prepares a snapshot of the database cl is connected to;
// conn describes that connection (for messages and checkpoint names).
func NewSnapshot(cl *goredis.Client, conn redisconn.Conn, opts SnapshotOptions, pub pipeline.Publisher, ck checkpoint.Store) (*Snapshot, error) {
	if opts.Name == "" {
		return nil, fmt.Errorf("snapshot needs the pipeline's name")
	}
	opts.setDefaults()
	s := &Snapshot{cl: cl, conn: conn, opts: opts, pub: pub, ck: ck, log: opts.Logger}
	s.reader = NewReader(cl, conn, ReaderOptions{
		Name: opts.Name, Types: opts.Types, MaxElements: opts.MaxElements, MaxValueBytes: opts.MaxValueBytes,
		ChunkElements: opts.ChunkElements, ChunkBytes: opts.ChunkBytes, MaxRecordBytes: opts.MaxRecordBytes,
		Epoch: opts.Epoch, Logger: opts.Logger,
	})
	return s, nil
}

// CheckpointName is where the snapshot saves its cursor.
func (s *Snapshot) CheckpointName() string {
	return fmt.Sprintf("%s/redis/%s/db%d/snapshot", s.opts.Name, s.conn.Addr, s.conn.DB)
}

// Progress returns the counters so far; safe to call while Run runs.
func (s *Snapshot) Progress() SnapshotProgress {
	return SnapshotProgress{
		Total: s.total.Load(), Scanned: s.scanned.Load(), Events: s.events.Load(),
		Rejected: s.rejected.Load(), Filtered: s.filtered.Load(), Vanished: s.vanished.Load(), BigKeys: s.bigKeys.Load(),
		Elsewhere: s.elsewhere.Load(), Resumed: s.resumed.Load(), Done: s.done.Load(),
	}
}

// Swept reports whether the snapshot ended with its truncate (see
// SnapshotOptions.Sweep): false when it resumed a saved cursor, could not
// read every key, or the version epoch moved while it ran — a caller that
// wanted the sweep must heal instead.
func (s *Snapshot) Swept() bool { return s.swept.Load() }

// page is one SCAN reply on its way through the readers to the publisher.
type page struct {
	keys    []string
	cursor  uint64 // the cursor after this page
	scanned int64  // keys scanned up to and including this page
	batch   pipeline.Batch
	counts  ReadCounts
	err     error
	ready   chan struct{}
}

// Run walks the database and returns once every key read is acknowledged
// by Kafka and the final position is saved, or on the first failure. A
// failure leaves the checkpoint at the last durable page: run again to
// continue from there.
func (s *Snapshot) Run(ctx context.Context) error {
	runID, err := serverRunID(ctx, s.cl)
	if err != nil {
		return fmt.Errorf("snapshot: %w", redisconn.Explain(s.conn, err))
	}
	// A server that does not say (an old or restricted one) is checked by
	// its run_id alone.
	replID, _ := replID(ctx, s.cl)
	start, err := s.startPosition(ctx, runID, replID)
	if err != nil {
		return err
	}
	if err := s.reader.Prepare(ctx); err != nil {
		return err
	}
	if n, err := s.cl.DBSize(ctx).Result(); err == nil {
		s.total.Store(n)
	}
	var sweep *pipeline.Event
	epoch := s.opts.Epoch.Load()
	if s.opts.Sweep && !s.resumed.Load() {
		now, err := s.cl.Time(ctx).Result()
		if err != nil {
			return fmt.Errorf("snapshot: read server time: %w", redisconn.Explain(s.conn, err))
		}
		sweep = &pipeline.Event{
			Op: pipeline.OpTruncate, Origin: pipeline.OriginSnapshot, Version: pipeline.ClockVersion(epoch, uint64(now.UnixMicro()), false),
			Scope:  &pipeline.Scope{Filter: s.opts.Filter, Slots: s.opts.Slots},
			Source: pipeline.SourceInfo{Connector: "redis", Name: s.opts.Name, DB: s.conn.DB, Node: s.conn.Addr, Time: now},
		}
	}
	s.mu.Lock()
	s.durable = start
	s.mu.Unlock()
	s.scanned.Store(start.Scanned)

	g, gctx := errgroup.WithContext(ctx)
	work := make(chan *page, s.opts.Readers)
	ordered := make(chan *page, 2*s.opts.Readers) // bounds pages in flight
	g.Go(func() error { return s.scan(gctx, start, work, ordered) })
	for range s.opts.Readers {
		g.Go(func() error {
			for p := range work {
				p.batch, p.counts, p.err = s.reader.Read(gctx, p.keys, pipeline.OriginSnapshot, []byte(strconv.FormatUint(p.cursor, 10)))
				if p.err != nil {
					p.err = fmt.Errorf("read %d keys at cursor %d: %w", len(p.keys), p.cursor, p.err)
				}
				close(p.ready)
			}
			return nil
		})
	}
	ckDone := make(chan struct{})
	stopCk := make(chan struct{})
	go func() {
		defer close(ckDone)
		s.saveLoop(ctx, stopCk)
	}()
	g.Go(func() error { return s.publish(gctx, ctx, ordered) })
	err = g.Wait()
	if err == nil && sweep != nil {
		err = s.sweep(ctx, sweep, epoch)
	}
	if err == nil {
		err = s.pub.Flush(ctx)
	}
	close(stopCk)
	<-ckDone
	if err != nil {
		// Save what is durable so a rerun loses as little as possible.
		s.saveDurable(context.WithoutCancel(ctx))
		return err
	}
	s.mu.Lock()
	final := s.durable
	s.mu.Unlock()
	s.done.Store(true)
	final.Done = true
	final.Cursor = 0
	final.Updated = time.Now().UTC()
	if err := s.save(ctx, final); err != nil {
		// The snapshot itself is complete and durable; a rerun would
		// only repeat work.
		s.log.Warn("snapshot finished but its final checkpoint could not be saved", "err", err)
	}
	return nil
}

// sweep broadcasts the snapshot's truncate, after every event it
// published, if the snapshot read every key in one epoch.
func (s *Snapshot) sweep(ctx context.Context, t *pipeline.Event, epoch uint64) error {
	switch {
	case s.elsewhere.Load() > 0 || s.forbidden.Load() > 0:
		s.log.Warn("the snapshot could not read every key, so it sweeps nothing from the target",
			"in_moving_slots", s.elsewhere.Load(), "unreadable", s.forbidden.Load())
		return nil
	case s.opts.Epoch.Load() != epoch:
		s.log.Info("the version epoch moved on during the snapshot, so it sweeps nothing from the target", "from", epoch, "to", s.opts.Epoch.Load())
		return nil
	}
	if why, err := slotsSettled(ctx, s.cl, s.opts.Slots); err != nil {
		return fmt.Errorf("snapshot: %w", redisconn.Explain(s.conn, err))
	} else if why != "" {
		s.log.Info("the snapshot sweeps nothing from the target", "because", why)
		return nil
	}
	if s.opts.BeforeSweep != nil {
		s.opts.BeforeSweep()
	}
	if err := s.pub.Broadcast(ctx, *t, nil); err != nil {
		return err
	}
	s.swept.Store(true)
	s.log.Info("snapshot done: keys the target holds from before it and the source no longer has will be swept")
	return nil
}

// scan issues SCAN calls and hands each page to the readers and, in order,
// to the publisher.
func (s *Snapshot) scan(ctx context.Context, start snapshotPosition, work, ordered chan<- *page) error {
	cursor, scanned := start.Cursor, start.Scanned
	defer close(work)
	defer close(ordered)
	var limiter *rate.Limiter
	if s.opts.KeysPerSecond > 0 {
		limiter = rate.NewLimiter(rate.Limit(s.opts.KeysPerSecond), max(s.opts.KeysPerSecond, s.opts.ScanCount))
	}
	for first := true; first || cursor != 0; first = false {
		kept, next, returned, err := scanPage(ctx, s.cl, s.conn, s.log, s.opts.Filter, s.opts.Types, cursor, s.opts.ScanCount)
		if err != nil {
			return err
		}
		if limiter != nil && len(kept) > 0 {
			if err := limiter.WaitN(ctx, min(len(kept), limiter.Burst())); err != nil {
				return err
			}
		}
		scanned += int64(returned)
		s.scanned.Store(scanned)
		s.filtered.Add(int64(returned - len(kept)))
		p := &page{keys: kept, cursor: next, scanned: scanned, ready: make(chan struct{})}
		select {
		case work <- p:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case ordered <- p:
		case <-ctx.Done():
			return ctx.Err()
		}
		cursor = next
	}
	return nil
}

// publish hands pages to the publisher in SCAN order. It waits for pages
// under gctx, the group's context, but publishes under runCtx: the
// producer fails buffered records whose context ends, and the group's
// context ends as soon as the last page is handed over.
func (s *Snapshot) publish(gctx, runCtx context.Context, ordered <-chan *page) error {
	for p := range ordered {
		select {
		case <-p.ready:
		case <-gctx.Done():
			return gctx.Err()
		}
		if p.err != nil {
			return p.err
		}
		if err := s.redirect(gctx, p); err != nil {
			return err
		}
		s.events.Add(int64(len(p.batch.Events)))
		s.vanished.Add(p.counts.Vanished)
		s.filtered.Add(p.counts.Skipped)
		s.rejected.Add(int64(len(p.batch.Rejects)))
		for _, r := range p.batch.Rejects {
			if r.Class == RejectUnreadable {
				s.forbidden.Add(1)
			}
		}
		cursor, scanned := p.cursor, p.scanned
		durable := func() { s.markDurable(cursor, scanned) }
		if len(p.counts.Big) == 0 {
			if err := s.pub.Publish(runCtx, p.batch, durable); err != nil {
				return err
			}
			continue
		}
		// Big keys follow the page's other keys, a piece at a time; the
		// cursor moves past the page only once every piece is durable.
		if err := s.pub.Publish(runCtx, p.batch, nil); err != nil {
			return err
		}
		pos := []byte(strconv.FormatUint(cursor, 10))
		for _, big := range p.counts.Big {
			if err := s.streamBig(gctx, runCtx, big, pos); err != nil {
				return err
			}
		}
		if err := s.pub.Publish(runCtx, pipeline.Batch{}, durable); err != nil {
			return err
		}
	}
	return nil
}

// redirect reads a page's keys that another master serves now (a slot
// migrating) through SnapshotOptions.Redirect, or counts them.
func (s *Snapshot) redirect(ctx context.Context, p *page) error {
	if len(p.counts.Elsewhere) == 0 {
		return nil
	}
	if s.opts.Redirect == nil {
		s.elsewhere.Add(int64(len(p.counts.Elsewhere)))
		return nil
	}
	b, counts, err := s.opts.Redirect.Read(ctx, p.counts.Elsewhere, pipeline.OriginSnapshot, []byte(strconv.FormatUint(p.cursor, 10)))
	if err != nil {
		return fmt.Errorf("read %d keys of migrating slots through the cluster: %w", len(p.counts.Elsewhere), err)
	}
	p.batch.Events = append(p.batch.Events, b.Events...)
	p.batch.Rejects = append(p.batch.Rejects, b.Rejects...)
	p.counts.Vanished += counts.Vanished
	p.counts.Skipped += counts.Skipped
	s.elsewhere.Add(int64(len(counts.Elsewhere)))
	for _, big := range counts.Big {
		big.via = s.opts.Redirect
		p.counts.Big = append(p.counts.Big, big)
	}
	return nil
}

// streamBig publishes a big key in pieces, or its reject.
func (s *Snapshot) streamBig(gctx, runCtx context.Context, big BigKey, pos []byte) error {
	s.log.Info("reading a big key in pieces", "key", big.Key, "type", big.Type, "size", big.Size)
	var pubErr error
	reader := s.reader
	if big.via != nil {
		reader = big.via
	}
	err := reader.Stream(gctx, big, pipeline.OriginSnapshot, pos, func(e pipeline.Event) error {
		s.events.Add(1)
		pubErr = s.pub.Publish(runCtx, pipeline.Batch{Events: []pipeline.Event{e}}, nil)
		return pubErr
	})
	var rej *RejectedKeyError
	switch {
	case pubErr != nil:
		return pubErr
	case errors.As(err, &rej):
		s.rejected.Add(1)
		return s.pub.Publish(runCtx, pipeline.Batch{Rejects: []pipeline.Reject{rej.Reject}}, nil)
	case err != nil:
		return err
	}
	s.bigKeys.Add(1)
	return nil
}
