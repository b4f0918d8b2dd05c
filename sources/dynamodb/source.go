package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/sources"
)

// Mode says what a Source runs.
type Mode struct {
	SnapshotOnly, LiveOnly, Restart bool
}

// Source is the snapshot and the stream of one table, with gap healing.
//
// What keeps the target exact across runs:
//
//   - The stream's position is taken before a scan starts — by replicate,
//     and by a backfill of a table whose stream is on — so a later
//     replicate reads every change made since, whichever command ran
//     first.
//   - A position that can no longer be read is a gap: the stream was
//     disabled and enabled again, a saved shard aged out of the stream,
//     records were trimmed, the positions are older than the stream's
//     retention, or a scan ran without a position. A gap is healed by a
//     new version epoch, a full scan and a truncate of everything older.
//   - A heal is written to the checkpoint store before the position it
//     replaces is forgotten, and is resumed after a restart until its
//     truncate is out: a gap is never lost between two runs.
//   - A full scan that starts afresh while the target may hold rows of an
//     earlier one starts a new epoch, so its rows outrank the old ones.
type Source struct {
	db      scanAPI
	table   Table
	scanOpt ScanOptions
	mode    Mode
	pub     pipeline.Publisher
	ck      checkpoint.Store
	log     *slog.Logger
	epoch   *pipeline.Epoch

	scan   atomic.Pointer[Scan] // the current snapshot, nil when none runs
	stream *Stream              // nil without a stream (a backfill of a table with none)
	heals  atomic.Int64

	mu    sync.Mutex
	state sourceState // what is saved in the epoch checkpoint
	gaps  chan string // gaps found by the stream, recorded already; buffered 1
	// gapsRecorded counts the gaps recorded; gapsHealed is how many of
	// them a completed heal covers (for a drain).
	gapsRecorded, gapsHealed int64
	// live is closed once Run follows the stream, its snapshot and a heal
	// left by an earlier run done.
	live chan struct{}
}

var _ pipeline.Source = (*Source)(nil)

// NewSource prepares the source of table. The stream is followed unless
// mode.SnapshotOnly; a backfill of a table whose stream is on still takes
// its position.
func NewSource(db scanAPI, streams streamsAPI, table Table, scan ScanOptions, stream StreamOptions,
	mode Mode, pub pipeline.Publisher, ck checkpoint.Store) (*Source, error) {
	s := &Source{db: db, table: table, scanOpt: scan, mode: mode, pub: pub, ck: ck, log: scan.Logger,
		epoch: pipeline.NewEpoch(0), gaps: make(chan string, 1), live: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.scanOpt.Epoch, stream.Epoch = s.epoch, s.epoch
	stream.OnGap = s.recordGap
	switch err := table.CheckStream(); {
	case err == nil, table.StreamView == "" && !mode.SnapshotOnly:
		// A stream that is off now may be off only for a moment (disabled
		// and enabled again): Run decides, once it knows whether this
		// pipeline captured the table's stream before.
		s.stream = NewStream(streams, db, table, stream, pub, ck)
	case !mode.SnapshotOnly:
		return nil, err
	}
	s.scan.Store(NewScan(db, table, s.scanOpt, pub, ck))
	return s, nil
}

// Heals is how many gaps were healed.
func (s *Source) Heals() int64 { return s.heals.Load() }

// ScanProgress is the progress of the current (or last) scan; ok is false
// when no scan runs.
func (s *Source) ScanProgress() (p ScanProgress, ok bool) {
	if sc := s.scan.Load(); sc != nil {
		return sc.Progress(), true
	}
	return p, false
}

// StreamStats are live capture's counters (a backfill follows the stream
// during its scan too); ok is false without a stream.
func (s *Source) StreamStats() (st StreamStats, ok bool) {
	stream := s.streamNow()
	if stream == nil {
		return st, false
	}
	return stream.Stats(), true
}

// Run takes the stream's position, snapshots the table (unless a finished
// snapshot or live-only says otherwise), heals what earlier runs left to
// heal, and follows the stream until ctx ends (snapshot-only: until the
// snapshot is published).
func (s *Source) Run(ctx context.Context) error {
	if err := s.loadState(ctx); err != nil {
		return err
	}
	if s.mode.SnapshotOnly {
		return s.backfill(ctx)
	}
	if s.table.StreamView == "" {
		if err := s.awaitStream(ctx); err != nil {
			if ctx.Err() != nil {
				return nil // stopped while waiting: nothing was read
			}
			return err
		}
	}
	gap, err := s.stream.Start(ctx)
	if err != nil {
		return err
	}
	if gap != "" {
		if err := s.recordGap(ctx, gap); err != nil {
			return err
		}
	}
	exists, finished, err := s.scan.Load().Status(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	healing := s.state.Heal != nil
	s.mu.Unlock()
	var runScan, fresh bool
	switch {
	case healing:
		// The heal scans.
	case s.stream.FirstRun() && exists:
		// A scan ran before the stream's position was ever taken (a
		// backfill of a table whose stream was off, or of an older
		// cutover): what changed since it read each item is in no stream
		// we can read.
		if err := s.recordGap(ctx, "the table was scanned before the stream's position was taken: changes made since are not in the stream"); err != nil {
			return err
		}
		healing = true
	case s.mode.LiveOnly:
	case s.mode.Restart || !exists:
		runScan, fresh = true, exists
	case !finished:
		runScan = true
	}
	s.log.Info("dynamodb source starting", "table", s.table.Name, "scan", runScan, "heal", healing, "stream", true, "epoch", s.epoch.Load())

	ctx, cancel := context.WithCancelCause(ctx)
	streamErr := make(chan error, 1)
	var stopped chan struct{} // closed when the stream followed stops
	follow := func(stream *Stream) {
		done := make(chan struct{})
		stopped = done
		go func() {
			err := stream.Run(ctx)
			close(done)
			streamErr <- err
		}()
	}
	follow(s.stream)
	// Every return waits for the stream to stop (it saves its positions
	// as it does).
	stop := func(err error) error {
		cancel(err)
		if serr := <-streamErr; err == nil {
			err = serr
		}
		return err
	}
	// A scan (a heal's too) starts only once the stream has handed over
	// the records of every write made before it, when the stream resumed
	// positions saved by an earlier run: their backlog, read while the
	// scan ran, carried the scan's epoch (a --restart's or a heal's new
	// one, or the same one) and a sequence number above the rows', and
	// put states older than the rows' over them until the stream caught
	// up. Positions this run took (a first run, a gap) have no backlog.
	if (runScan || healing) && gap == "" && !s.stream.FirstRun() {
		switch err := s.stream.awaitBacklog(ctx, stopped, false); {
		case errors.Is(err, errBacklogStopped):
			// The stream stopped before its backlog was handed over: a scan
			// now would start a new epoch that backlog, read by the next
			// run, would then carry. A stream that changed (disabled and
			// enabled again) has no backlog left to read: its gap is
			// recorded and healed by a full scan in a newer epoch.
			serr := <-streamErr
			if !errors.Is(serr, errStreamChanged) {
				streamErr <- serr
				return stop(nil)
			}
			streamErr <- serr // the loop below follows the new stream
		case err != nil:
			return stop(nil) // stopped while waiting: nothing was scanned
		}
	}
	if runScan {
		if err := s.runScan(ctx, fresh); err != nil {
			return stop(err)
		}
	} else {
		s.scan.Store(nil)
	}
	if healing {
		if err := s.heal(ctx); err != nil {
			return stop(err)
		}
	}
	close(s.live)
	for {
		select {
		case <-ctx.Done():
			return stop(nil)
		case err := <-streamErr:
			if errors.Is(err, errStreamChanged) {
				// The gap is recorded: follow the new stream, from before
				// the heal its gap asks for.
				if err := s.followNewStream(ctx); err != nil {
					if ctx.Err() != nil {
						err = nil // stopped while waiting for the stream
					}
					// The old stream has returned already: nothing to wait for.
					cancel(err)
					return err
				}
				follow(s.streamNow())
				continue
			}
			streamErr <- err // stop reads it
			return stop(err)
		case <-s.gaps:
			// A shard read again from its trim horizon after a gap has a
			// backlog too.
			switch err := s.streamNow().awaitBacklog(ctx, stopped, false); {
			case errors.Is(err, errBacklogStopped):
				// The stream's error comes next: a changed stream is followed
				// (its gap brings a heal), another one stops the source, and
				// the heal, saved, resumes next run.
				continue
			case err != nil:
				return stop(nil) // stopped while waiting: the heal resumes next run
			}
			if err := s.heal(ctx); err != nil {
				return stop(err)
			}
		}
	}
}

// followNewStream starts reading the table's new stream: a new Stream,
// whose Start sees the changed ARN (recording the gap again does no harm)
// and takes a position on it.
func (s *Source) followNewStream(ctx context.Context) error {
	table, err := s.streamOn(ctx)
	if err != nil {
		return err
	}
	s.log.Warn("the table has a new stream: following it", "table", table.Name, "stream", table.StreamARN)
	old := s.streamNow()
	st := NewStream(old.cl, s.db, table, old.opts, s.pub, s.ck)
	if _, err := st.Start(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.table = table
	s.stream = st
	s.mu.Unlock()
	return nil
}

// awaitStream runs before live capture starts on a table whose stream is
// off. A pipeline that never captured the table's stream is refused with
// the command that turns it on: the user forgot it. One that did capture
// it before waits until the stream is back (disabled and enabled again,
// maybe while cutover restarted): the new stream's Start then records the
// gap, and a heal re-scans what neither stream holds. Exiting instead
// would turn a stream toggled for a moment into a failed replicate.
func (s *Source) awaitStream(ctx context.Context) error {
	stream := s.streamNow()
	if _, found, err := stream.load(ctx); err != nil {
		return err
	} else if !found {
		return s.table.CheckStream()
	}
	table, err := s.streamOn(ctx)
	if err != nil {
		return err
	}
	st := NewStream(stream.cl, s.db, table, stream.opts, s.pub, s.ck)
	s.mu.Lock()
	s.table = table
	s.stream = st
	s.mu.Unlock()
	return nil
}

// streamOn describes the table until its stream is on and returns the
// table with that stream; while it is off it waits, saying so once.
func (s *Source) streamOn(ctx context.Context) (Table, error) {
	waiting := false
	for {
		arn, view, err := currentStream(ctx, s.db, s.table.Name)
		switch {
		case err != nil && ctx.Err() != nil:
			return Table{}, ctx.Err()
		case err != nil:
			// The SDK retried already; a failed look while waiting is
			// logged and looked at again, as checkARN does.
			s.log.Warn("reading the table's stream settings failed; retrying", "table", s.table.Name,
				"err", explain(s.scanOpt.Endpoint, err))
		case arn != "":
			table := s.table
			table.StreamARN, table.StreamView = arn, view
			return table, table.CheckStream()
		}
		if err == nil && !waiting {
			s.log.Warn("the table's stream is off: waiting for it to be enabled again (changes meanwhile are healed by a re-scan)",
				"table", s.table.Name, "fix", fmt.Sprintf("aws dynamodb update-table --table-name %s --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES", s.table.Name))
			waiting = true
		}
		if !sources.Sleep(ctx, s.streamNow().opts.RefreshEvery) {
			return Table{}, ctx.Err()
		}
	}
}

func (s *Source) streamNow() *Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stream
}

// backfill scans the table. With a stream, it follows the stream while
// it scans, as replicate does, and stops once the positions it leaves are
// exact (Stream.settle): a replicate started later reads from them every
// change made since the scan began, and none made before — re-applied
// over the scan's rows, an older change would move a key backwards.
func (s *Source) backfill(ctx context.Context) error {
	exists, finished, err := s.scan.Load().Status(ctx)
	if err != nil {
		return err
	}
	fresh := exists && (finished || s.mode.Restart)
	stream := s.streamNow()
	if stream == nil {
		return s.runScan(ctx, fresh)
	}
	gap, err := stream.Start(ctx)
	if err != nil {
		return err
	}
	if gap == "" && stream.FirstRun() && exists && !fresh {
		// The scan resumed began before any stream position was taken (an
		// older cutover, or the stream was off then): its first pages are
		// older than the position.
		gap = "the scan resumed began before the stream's position was taken: changes made since are not in the stream"
	}
	if gap != "" {
		if err := s.recordGap(ctx, gap); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	streamErr := make(chan error, 1)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		err := stream.Run(ctx)
		if err != nil && !errors.Is(err, errStreamChanged) {
			cancel(err) // the scan stops too
		}
		streamErr <- err
	}()
	if gap == "" && !stream.FirstRun() {
		// As in Run: the backlog of resumed positions is handed over
		// before the scan, which may start a new epoch.
		err = stream.awaitBacklog(ctx, stopped, true)
		if errors.Is(err, errBacklogStopped) {
			serr := <-streamErr
			streamErr <- serr
			if errors.Is(serr, errStreamChanged) {
				err = nil // no backlog is left to read: the next replicate heals the gap
			}
		}
	}
	if err == nil {
		err = s.runScan(ctx, fresh)
	}
	if err == nil {
		stream.settle(ctx, stopped)
	}
	cancel(nil)
	switch serr := <-streamErr; {
	case errors.Is(serr, errStreamChanged):
		// The stream was disabled and enabled again meanwhile: the
		// positions left are of the old one, and the next replicate heals
		// the gap.
	case serr != nil:
		return fmt.Errorf("follow the stream of %s during the scan: %w", s.table.Name, serr)
	}
	return err
}

// runScan runs the snapshot. fresh says it starts over while the target
// may hold rows of an earlier scan: those rows carry the same version as
// the new ones would (sequence 1 of the epoch), so the new scan starts a
// new epoch to outrank them.
func (s *Source) runScan(ctx context.Context, fresh bool) error {
	opts := s.scanOpt
	if fresh {
		if err := s.advanceEpoch(ctx, nil); err != nil {
			return err
		}
		opts.Restart = true
	} else {
		opts.Restart = s.mode.Restart
	}
	scan := NewScan(s.db, s.table, opts, s.pub, s.ck)
	s.scan.Store(scan)
	if err := scan.Run(ctx); err != nil {
		return fmt.Errorf("scan of %s stopped: %w (run the same command again to resume)", s.table.Name, err)
	}
	s.log.Info("snapshot published", "table", s.table.Name, "items", scan.Progress().Items)
	return nil
}
