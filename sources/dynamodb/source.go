package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline"
)

// Mode says what a Source runs.
type Mode struct {
	SnapshotOnly, LiveOnly, Restart bool
}

// Source is the snapshot and the stream of one table, with gap healing.
type Source struct {
	db      *dynamodb.Client
	streams *dynamodbstreams.Client
	table   Table
	scanOpt ScanOptions
	mode    Mode
	pub     Publisher
	ck      checkpoint.Store
	log     *slog.Logger
	epoch   *pipeline.Epoch

	scan   atomic.Pointer[Scan] // the current snapshot, nil when none runs
	stream *Stream              // nil in snapshot-only mode
	heals  atomic.Int64
}

// NewSource prepares the source of table.
func NewSource(db *dynamodb.Client, streams *dynamodbstreams.Client, table Table, scan ScanOptions, stream StreamOptions,
	mode Mode, pub Publisher, ck checkpoint.Store) (*Source, error) {
	s := &Source{db: db, streams: streams, table: table, scanOpt: scan, mode: mode, pub: pub, ck: ck, log: scan.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	epoch, err := s.loadEpoch(context.Background())
	if err != nil {
		return nil, err
	}
	s.epoch = pipeline.NewEpoch(epoch)
	s.scanOpt.Epoch, stream.Epoch = s.epoch, s.epoch
	if !mode.SnapshotOnly {
		if err := table.CheckStream(); err != nil {
			return nil, err
		}
		s.stream = NewStream(streams, table, stream, pub, ck)
	}
	s.scan.Store(NewScan(db, table, s.scanOpt, pub, ck))
	return s, nil
}

// Heals is how many trimmed gaps were healed.
func (s *Source) Heals() int64 { return s.heals.Load() }

// ScanProgress is the progress of the current (or last) scan; ok is false
// when no scan runs.
func (s *Source) ScanProgress() (p ScanProgress, ok bool) {
	if sc := s.scan.Load(); sc != nil {
		return sc.Progress(), true
	}
	return p, false
}

// StreamStats are live capture's counters; ok is false without it.
func (s *Source) StreamStats() (st StreamStats, ok bool) {
	if s.stream == nil {
		return st, false
	}
	return s.stream.Stats(), true
}

// Run takes the stream's position, snapshots the table (unless a finished
// snapshot or live-only says otherwise) and follows the stream until ctx
// ends (snapshot-only: until the snapshot is published).
func (s *Source) Run(ctx context.Context) error {
	healNow := false
	if s.stream != nil {
		if _, err := s.stream.Start(ctx); err != nil {
			if !errors.Is(err, ErrTrimmed) {
				return err
			}
			healNow = true
		}
	}
	_, finished, err := s.scan.Load().Status(ctx)
	if err != nil {
		return err
	}
	runScan := !s.mode.LiveOnly && (s.mode.SnapshotOnly || s.mode.Restart || !finished)
	s.log.Info("dynamodb source starting", "table", s.table.Name, "scan", runScan, "stream", s.stream != nil, "epoch", s.epoch.Load())

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	streamErr := make(chan error, 1)
	if s.stream != nil {
		go func() { streamErr <- s.stream.Run(ctx) }()
	}
	if runScan {
		if err := s.scan.Load().Run(ctx); err != nil {
			return fmt.Errorf("scan of %s stopped: %w (run the same command again to resume)", s.table.Name, err)
		}
		s.log.Info("snapshot published", "table", s.table.Name, "items", s.scan.Load().Progress().Items)
	} else {
		s.scan.Store(nil)
	}
	if s.stream == nil {
		return nil
	}
	if healNow {
		if err := s.heal(ctx); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return <-streamErr
		case err := <-streamErr:
			return err
		case gap := <-s.stream.Gaps():
			s.log.Warn("the stream lost records before they were read", "table", s.table.Name, "err", gap)
			if err := s.heal(ctx); err != nil {
				return err
			}
		}
	}
}

// heal answers a trimmed gap: a new epoch, a full scan at it, then a
// truncate of everything older — the items deleted while the stream's
// records were lost.
func (s *Source) heal(ctx context.Context) error {
	e, err := s.epoch.Advance(func(next uint64) error { return s.saveEpoch(ctx, next) })
	if err != nil {
		return fmt.Errorf("heal: start a new version epoch: %w", err)
	}
	s.log.Warn("healing a stream gap: re-scanning the whole table at a new version epoch", "table", s.table.Name, "epoch", e)
	opts := s.scanOpt
	opts.Restart = true
	scan := NewScan(s.db, s.table, opts, s.pub, s.ck)
	s.scan.Store(scan)
	if err := scan.Run(ctx); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	since, _ := pipeline.SequenceVersion(e, "0")
	t := pipeline.Event{Op: pipeline.OpTruncate, Origin: pipeline.OriginLive, Version: since, Scope: &pipeline.Scope{},
		Source: pipeline.SourceInfo{Connector: "dynamodb", Name: s.scanOpt.Name, Table: s.table.Name, Time: time.Now()}}
	if err := s.pub.Broadcast(ctx, t, nil); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	s.heals.Add(1)
	s.log.Info("heal done: items deleted during the gap will be swept from the target", "table", s.table.Name, "items", scan.Progress().Items)
	return nil
}

func (s *Source) epochName() string { return epochName(s.scanOpt.Name, s.table.Name) }

func epochName(name, table string) string { return fmt.Sprintf("%s/dynamodb/%s/epoch", name, table) }

func (s *Source) loadEpoch(ctx context.Context) (uint64, error) {
	return LoadEpoch(ctx, s.ck, s.scanOpt.Name, s.table.Name)
}

// LoadEpoch returns the version epoch the pipeline name's source of table
// is at (0 before its first heal).
func LoadEpoch(ctx context.Context, ck checkpoint.Store, name, table string) (uint64, error) {
	key := epochName(name, table)
	raw, err := ck.Load(ctx, key)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v struct {
		Epoch string `json:"epoch"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("epoch checkpoint %s is corrupt: %w (delete it to start at epoch 0)", key, err)
	}
	return strconv.ParseUint(v.Epoch, 10, 64)
}

func (s *Source) saveEpoch(ctx context.Context, e uint64) error {
	raw, _ := json.Marshal(map[string]string{"epoch": strconv.FormatUint(e, 10)})
	return s.ck.Save(ctx, s.epochName(), raw)
}
