package redis

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
)

// Mode says what a Source runs.
type Mode struct {
	// SnapshotOnly copies the keyspace and returns (a backfill).
	SnapshotOnly bool
	// LiveOnly follows changes from now on, without a snapshot.
	LiveOnly bool
	// Restart discards a snapshot's saved position and starts it over.
	Restart bool
}

// SourceOptions configure a Source. A zero value takes the default of the
// options it is passed on to — SnapshotOptions, LiveOptions and
// ReaderOptions, where each default is stated once — not the CLI's: the
// CLI passes every one of them from source.redis.* and
// kafka.max_record_bytes.
type SourceOptions struct {
	// Name is the pipeline's name: it prefixes checkpoint names and is the
	// events' source name.
	Name string
	// Filter and Types select keys.
	Filter pipeline.KeyFilter
	Types  []pipeline.Type
	Mode   Mode
	// ScanCount, Readers, MaxElements, MaxValueBytes, ChunkElements,
	// ChunkBytes, MaxRecordBytes and KeysPerSecond: see SnapshotOptions;
	// HealKeysPerSecond: see LiveOptions.
	ScanCount         int
	Readers           int
	MaxElements       int
	MaxValueBytes     int
	ChunkElements     int
	ChunkBytes        int
	MaxRecordBytes    int
	KeysPerSecond     int
	HealKeysPerSecond int
	// Sentinel, when set, names the master to read: the source follows
	// it to a new master after a failover, like a cluster's.
	Sentinel *redisconn.Sentinel
	// TopologyEvery is how often a cluster's masters and slots (or the
	// master a Sentinel names) are read again; default 2s.
	TopologyEvery time.Duration
	// ClockEvery is how often each server's clock is checked for a step
	// backwards while live capture runs; default 1s.
	ClockEvery time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// SourceStats sum what every node of a Source did so far.
type SourceStats struct {
	// Snapshot sums the nodes' snapshots; HasSnapshot is false when none
	// ran.
	Snapshot    SnapshotProgress
	HasSnapshot bool
	// Live sums the nodes' live capture; HasLive is false without it.
	Live    LiveStats
	HasLive bool
	// Epoch is the version epoch reads are stamped with now.
	Epoch uint64
	// Nodes is how many servers are read now; Topology counts the
	// cluster topology changes followed, ClockSteps the server clocks
	// found stepped backwards.
	Nodes      int
	Topology   int64
	ClockSteps int64
	// Masters are the servers read now.
	Masters []string
}

// Source reads a Redis database — a standalone server, or every master of
// a cluster — into the pipeline: a snapshot of each node and, unless
// SnapshotOnly, live capture of its changes, with the decisions that keep
// the target exact across runs:
//
//   - Every run starts a new version epoch, saved before anything is read
//     in it, so every read of this run outranks every read of an earlier
//     one whatever the servers' clocks did in between.
//   - A node that ran before (this pipeline has a checkpoint) is healed
//     when live capture starts: what changed while cutover was not
//     running is read again, and what was deleted meanwhile is swept from
//     the target. A fresh snapshot of such a node sweeps by itself.
//   - A cluster's topology is followed: a failover or a slot migration
//     starts a new epoch and heals the masters whose slots changed. So
//     is the master a Sentinel names: after a failover the new master —
//     which may lack the last writes the old one acknowledged, and whose
//     clock may be behind — is read in a new epoch and healed (a SCAN
//     cursor belongs to one server, so its snapshot starts over as the
//     heal's re-scan).
//   - A server clock that steps backwards starts a new epoch and heals
//     that server.
type Source struct {
	conn    redisconn.Conn
	seed    *goredis.Client
	cluster *goredis.ClusterClient
	opts    SourceOptions
	pub     pipeline.Publisher
	ck      checkpoint.Store
	log     *slog.Logger

	epoch *pipeline.Epoch
	nodes *nodeSet
	// redirect reads keys of migrating slots through the cluster client,
	// for a backfill (no heal follows it).
	redirect *Reader
	// ranBefore is true when this pipeline's source ran before.
	ranBefore bool
	// checkTopology asks the watcher to look now; buffered 1.
	checkTopology chan struct{}
	// lastShards is the topology last answered with a new epoch.
	lastShards []Shard
	// unstarted counts the masters of the topology that could not be
	// started yet (a drain waits for them).
	unstarted atomic.Int64
	// started is closed once Run has started every node it began with:
	// a drain before that would find no node to wait for.
	started chan struct{}
}

var _ pipeline.Source = (*Source)(nil)

// NewSource prepares a source reading the server seed is connected to
// (conn describes it) — and, when cluster is not nil, every master of
// that cluster. Run reads it.
func NewSource(conn redisconn.Conn, seed *goredis.Client, cluster *goredis.ClusterClient, opts SourceOptions, pub pipeline.Publisher, ck checkpoint.Store) *Source {
	if opts.TopologyEvery <= 0 {
		opts.TopologyEvery = 2 * time.Second
	}
	if opts.ClockEvery <= 0 {
		opts.ClockEvery = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Source{conn: conn, seed: seed, cluster: cluster, opts: opts, pub: pub, ck: ck, log: opts.Logger,
		epoch: pipeline.NewEpoch(0), nodes: newNodeSet(), checkTopology: make(chan struct{}, 1), started: make(chan struct{})}
}

// Stats returns what the source did so far; safe while Run runs.
func (s *Source) Stats() SourceStats {
	st := SourceStats{Epoch: s.epoch.Load()}
	st.Snapshot.Done = true
	for _, nr := range s.nodes.all() {
		if nr.snap != nil {
			st.HasSnapshot = true
			st.Snapshot.add(nr.snap.Progress())
		}
		if nr.live != nil {
			st.HasLive = true
			st.Live.add(nr.live.Stats())
		}
	}
	running := s.nodes.running()
	st.Nodes = len(running)
	for _, nr := range running {
		st.Masters = append(st.Masters, nr.node.conn.Addr)
	}
	st.Topology, st.ClockSteps = s.nodes.topologyChanges.Load(), s.nodes.clockSteps.Load()
	return st
}

func (p *SnapshotProgress) add(n SnapshotProgress) {
	p.Total += n.Total
	p.Scanned += n.Scanned
	p.Events += n.Events
	p.Rejected += n.Rejected
	p.Filtered += n.Filtered
	p.Vanished += n.Vanished
	p.BigKeys += n.BigKeys
	p.Elsewhere += n.Elsewhere
	p.Resumed = p.Resumed || n.Resumed
	p.Done = p.Done && n.Done
}

func (l *LiveStats) add(n LiveStats) {
	l.Notifications += n.Notifications
	l.Events += n.Events
	l.Deletes += n.Deletes
	l.Rejected += n.Rejected
	l.Dirty += n.Dirty
	l.Gaps += n.Gaps
	l.Heals += n.Heals
	l.HealedKeys += n.HealedKeys
	l.Incomplete += n.Incomplete
	l.Healing = l.Healing || n.Healing
}

// Run reads until ctx ends (live capture; it then returns nil) or, with
// SnapshotOnly, until every node's snapshot is published and durable. It
// returns the first failure of a node: a source that cannot go on stops
// the process rather than fall silent.
func (s *Source) Run(ctx context.Context) error {
	st, found, err := LoadState(ctx, s.ck, s.opts.Name)
	if err != nil {
		return err
	}
	s.ranBefore = found
	s.epoch = pipeline.NewEpoch(st.Epoch)
	if err := s.advanceEpoch(ctx, "a new run of the source"); err != nil {
		return err
	}
	if s.opts.Mode.SnapshotOnly && s.cluster != nil {
		s.redirect = NewReader(s.cluster, s.conn, s.readerOptions())
	}
	shards, err := s.shards(ctx)
	if err != nil {
		return err
	}
	s.lastShards = shards
	defer s.nodes.closeAll()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	failed := make(chan error, 1)
	for _, sh := range shards {
		if err := s.startShard(ctx, sh, "", failed); err != nil {
			cancel(err)
			s.nodes.stopAll()
			return err
		}
	}
	if s.opts.Mode.SnapshotOnly {
		if s.opts.Sentinel == nil {
			return s.waitSnapshots(ctx, failed)
		}
		return s.sameMaster(ctx, func() error { return s.waitSnapshots(ctx, failed) })
	}
	close(s.started)
	if s.cluster != nil || s.opts.Sentinel != nil {
		go s.watchTopology(ctx, failed)
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-failed:
	}
	cancel(runErr)
	s.nodes.stopAll()
	if runErr == nil {
		for _, nr := range s.nodes.all() {
			if nr.err != nil {
				return nr.err
			}
		}
	}
	return runErr
}

// waitSnapshots waits for every node's snapshot (a backfill).
func (s *Source) waitSnapshots(ctx context.Context, failed <-chan error) error {
	for _, nr := range s.nodes.running() {
		select {
		case <-nr.done:
			if nr.err != nil {
				s.nodes.stopAll()
				return nr.err
			}
		case err := <-failed:
			s.nodes.stopAll()
			return err
		case <-ctx.Done():
			s.nodes.stopAll()
			return fmt.Errorf("interrupted: %w (run the same command again to resume)", context.Cause(ctx))
		}
	}
	return nil
}

// advanceEpoch starts a new version epoch, saved before any read uses it.
func (s *Source) advanceEpoch(ctx context.Context, why string) error {
	e, err := s.epoch.Advance(func(next uint64) error {
		return saveState(ctx, s.ck, s.opts.Name, State{Epoch: next})
	})
	if err != nil {
		return fmt.Errorf("start a new version epoch (%s): %w", why, err)
	}
	s.log.Info("version epoch", "epoch", e, "why", why)
	return nil
}

// topology is the servers the source reads.
func (s *Source) topology() *Topology {
	return &Topology{Conn: s.conn, Seed: s.seed, Cluster: s.cluster, Sentinel: s.opts.Sentinel}
}

// shards returns the servers to read: the configured one, the master the
// sentinels name now, or every master of the cluster.
func (s *Source) shards(ctx context.Context) ([]Shard, error) { return s.topology().Shards(ctx) }

func (s *Source) readerOptions() ReaderOptions {
	o := s.opts
	return ReaderOptions{Name: o.Name, Types: o.Types, MaxElements: o.MaxElements, MaxValueBytes: o.MaxValueBytes,
		ChunkElements: o.ChunkElements, ChunkBytes: o.ChunkBytes, MaxRecordBytes: o.MaxRecordBytes, Epoch: s.epoch, Logger: s.log}
}
