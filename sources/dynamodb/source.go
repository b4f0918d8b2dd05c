package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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
		if err := s.stream.awaitBacklog(ctx, stopped); err != nil {
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
			if err := s.streamNow().awaitBacklog(ctx, stopped); err != nil {
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
		err = stream.awaitBacklog(ctx, stopped)
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

// recordGap writes down that a heal is needed, before the stream forgets
// the position that can no longer be read, and wakes the heal.
func (s *Source) recordGap(ctx context.Context, reason string) error {
	s.mu.Lock()
	st := s.state
	if st.Heal == nil {
		st.Heal = &healState{Reason: reason}
	} else {
		// A heal already pending, or running: one more must follow it
		// unless it has not started reading yet.
		h := *st.Heal
		h.Again = h.Epoch != ""
		h.Reason = reason
		st.Heal = &h
	}
	err := s.saveState(ctx, st)
	if err == nil {
		s.state = st
		s.gapsRecorded++
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("record a stream gap (%s): %w", reason, err)
	}
	s.log.Error("GAP: changes of the table may be missing from the stream; a heal will re-scan the table and sweep what was deleted meanwhile",
		"table", s.table.Name, "reason", reason)
	select {
	case s.gaps <- reason:
	default:
	}
	return nil
}

// heal answers a gap: a new epoch, a full scan at it, then a truncate of
// everything older — the items deleted while changes were not seen. A
// heal interrupted by a restart resumes its scan in its own epoch.
func (s *Source) heal(ctx context.Context) error {
	s.mu.Lock()
	h := s.state.Heal
	// Every gap recorded by now is covered by this heal's scan, which
	// starts after it; or, when no heal is pending, was covered by an
	// earlier one (a gap recorded during a heal's scan keeps a heal
	// pending: healState.Again).
	covers := s.gapsRecorded
	if h == nil {
		s.gapsHealed = max(s.gapsHealed, covers)
	}
	s.mu.Unlock()
	if h == nil {
		return nil
	}
	resume := h.Epoch != "" && h.Epoch == strconv.FormatUint(s.epoch.Load(), 10)
	if !resume {
		if err := s.advanceEpoch(ctx, func(next uint64, st *sourceState) {
			st.Heal = &healState{Reason: h.Reason, Epoch: strconv.FormatUint(next, 10)}
		}); err != nil {
			return fmt.Errorf("heal: %w", err)
		}
	}
	e := s.epoch.Load()
	s.log.Warn("healing a stream gap: scanning the whole table at a new version epoch", "table", s.table.Name, "epoch", e,
		"reason", h.Reason, "resumed", resume)
	opts := s.scanOpt
	opts.Restart = !resume
	scan := NewScan(s.db, s.table, opts, s.pub, s.ck)
	s.scan.Store(scan)
	if err := scan.Run(ctx); err != nil {
		return fmt.Errorf("heal: %w (run the same command again: the heal resumes)", err)
	}
	since, _ := pipeline.SequenceVersion(e, "0")
	t := pipeline.Event{Op: pipeline.OpTruncate, Origin: pipeline.OriginLive, Version: since, Scope: &pipeline.Scope{},
		Source: pipeline.SourceInfo{Connector: "dynamodb", Name: s.scanOpt.Name, Table: s.table.Name, Time: time.Now()}}
	if err := s.pub.Broadcast(ctx, t, nil); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	if err := s.pub.Flush(ctx); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	s.mu.Lock()
	st := s.state
	again := st.Heal != nil && st.Heal.Again
	if again {
		st.Heal = &healState{Reason: st.Heal.Reason} // another gap came during this heal
	} else {
		st.Heal = nil
	}
	err := s.saveState(ctx, st)
	if err == nil {
		s.state = st
		s.gapsHealed = max(s.gapsHealed, covers)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("heal done, but recording it failed: %w (the next run heals again)", err)
	}
	s.heals.Add(1)
	s.log.Info("heal done: items deleted during the gap will be swept from the target", "table", s.table.Name, "items", scan.Progress().Items)
	if again {
		select {
		case s.gaps <- st.Heal.Reason:
		default:
		}
	}
	return nil
}

// sourceState is the source's pipeline-wide checkpoint.
type sourceState struct {
	// Epoch is the version epoch, as decimal text.
	Epoch string `json:"epoch"`
	// Heal, when set, is a heal still to do or under way.
	Heal *healState `json:"heal,omitempty"`
}

type healState struct {
	Reason string `json:"reason"`
	// Epoch is the epoch the heal's scan reads at, once it started.
	Epoch string `json:"epoch,omitempty"`
	// Again is set when another gap came while the heal was under way:
	// one more heal follows it.
	Again bool `json:"again,omitempty"`
}

func epochName(name, table string) string { return fmt.Sprintf("%s/dynamodb/%s/epoch", name, table) }

// loadState reads the source's checkpoint and sets the epoch from it.
func (s *Source) loadState(ctx context.Context) error {
	st, err := loadState(ctx, s.ck, s.scanOpt.Name, s.table.Name)
	if err != nil {
		return err
	}
	e, err := st.epoch()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
	s.epoch = pipeline.NewEpoch(e)
	s.scanOpt.Epoch = s.epoch
	if s.stream != nil {
		s.stream.opts.Epoch = s.epoch
	}
	if st.Heal != nil {
		s.log.Warn("a heal of a stream gap is pending from an earlier run; it runs now", "table", s.table.Name, "reason", st.Heal.Reason)
	}
	return nil
}

func (st sourceState) epoch() (uint64, error) {
	if st.Epoch == "" {
		return 0, nil
	}
	return strconv.ParseUint(st.Epoch, 10, 64)
}

// advanceEpoch starts the next epoch, saved (with whatever edit changes in
// the state) before anything is read in it.
func (s *Source) advanceEpoch(ctx context.Context, edit func(next uint64, st *sourceState)) error {
	_, err := s.epoch.Advance(func(next uint64) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		st := s.state
		st.Epoch = strconv.FormatUint(next, 10)
		if edit != nil {
			edit(next, &st)
		}
		if err := s.saveState(ctx, st); err != nil {
			return err
		}
		s.state = st
		return nil
	})
	if err != nil {
		return fmt.Errorf("start a new version epoch: %w", err)
	}
	return nil
}

func (s *Source) saveState(ctx context.Context, st sourceState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.ck.Save(ctx, epochName(s.scanOpt.Name, s.table.Name), raw)
}

func loadState(ctx context.Context, ck checkpoint.Store, name, table string) (sourceState, error) {
	var st sourceState
	key := epochName(name, table)
	raw, err := ck.Load(ctx, key)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("epoch checkpoint %s is corrupt: %w (delete it to start at epoch 0)", key, err)
	}
	return st, nil
}

// LoadEpoch returns the version epoch the pipeline name's source of table
// is at (0 before its first heal).
func LoadEpoch(ctx context.Context, ck checkpoint.Store, name, table string) (uint64, error) {
	st, err := loadState(ctx, ck, name, table)
	if err != nil {
		return 0, err
	}
	return st.epoch()
}

// MarkWritten records that the pipeline name has written to its target
// without a source run (reconcile --repair does). Without a stream
// position yet, what changes in the table from now on until replicate
// takes one is in no stream it can read: a heal is recorded, which the
// next replicate runs (a scan at a new epoch and a sweep).
func MarkWritten(ctx context.Context, ck checkpoint.Store, name, table string) error {
	if _, err := ck.Load(ctx, fmt.Sprintf("%s/dynamodb/%s/stream", name, table)); !errors.Is(err, checkpoint.ErrNotFound) {
		return err // a stream position exists (or the store failed)
	}
	st, err := loadState(ctx, ck, name, table)
	if err != nil || st.Heal != nil {
		return err
	}
	st.Heal = &healState{Reason: "reconcile --repair wrote to the target before the table's stream position was taken"}
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return ck.Save(ctx, epochName(name, table), raw)
}
