package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
	redissrc "github.com/cutover/cutover/sources/redis"
)

// sourceNode is one server the source reads: the standalone server, or one
// master of a cluster.
type sourceNode struct {
	shard redissrc.Shard
	conn  redissrc.Conn
	cl    *goredis.Client
	own   bool // cl was opened for this node and is closed with it
}

// sourceShards returns the servers to read: the configured one, or every
// master when it is a cluster node.
func (w *wiring) sourceShards(ctx context.Context) ([]redissrc.Shard, error) {
	if w.rccl == nil {
		return []redissrc.Shard{{Addr: w.rconn.Addr}}, nil
	}
	shards, err := redissrc.ClusterShards(ctx, w.rccl)
	if err != nil {
		return nil, redissrc.Explain(w.rconn, err)
	}
	return shards, nil
}

// openNode connects to one shard (the seed connection for a standalone
// server).
func (w *wiring) openNode(ctx context.Context, shard redissrc.Shard) (*sourceNode, error) {
	if w.rccl == nil {
		return &sourceNode{shard: shard, conn: w.rconn, cl: w.rcl}, nil
	}
	conn := w.rconn
	conn.Addr = shard.Addr
	cl, err := redissrc.Connect(ctx, conn)
	if err != nil {
		return nil, err
	}
	return &sourceNode{shard: shard, conn: conn, cl: cl, own: true}, nil
}

func (n *sourceNode) close() {
	if n.own {
		n.cl.Close() //nolint:gosec // shutting down
	}
}

// nodeRun is one node's snapshot and live capture.
type nodeRun struct {
	node *sourceNode
	snap *redissrc.Snapshot // nil when no snapshot runs
	live *redissrc.Live     // nil when live capture does not run
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{} // closed when the node stopped; err is its result
	err  error         // nil when stopped by its context
}

// nodeStart says how a node starts.
type nodeStart struct {
	mode replicateMode
	// heal, if set, forces a heal after the snapshot (or at once): the
	// node took over slots whose changes may have been missed.
	heal string
	// noSnapshot skips the snapshot: a heal re-reads everything anyway.
	noSnapshot bool
}

// startNode subscribes to the node's changes and starts its snapshot and
// live capture in the background; decisions come from what the previous
// run left in the checkpoint store.
func (w *wiring) startNode(ctx context.Context, node *sourceNode, epoch *pipeline.Epoch, ranBefore bool, how nodeStart) (*nodeRun, error) {
	snap, err := w.newNodeSnapshot(node, how.mode.restart, epoch)
	if err != nil {
		return nil, err
	}
	status, err := snap.Status(ctx)
	if err != nil {
		return nil, err
	}
	var live *redissrc.Live
	if !how.mode.snapshotOnly {
		r := w.cfg.Source.Redis
		types, err := parseTypes(r.Types)
		if err != nil {
			return nil, err
		}
		live = redissrc.NewLive(node.cl, node.conn, redissrc.LiveOptions{
			Name: w.cfg.Name, Filter: filterOf(r), Types: types, ScanCount: r.ScanCount, MaxElements: r.MaxElements,
			MaxValueBytes: r.MaxValueBytes, ChunkElements: r.ChunkElements, ChunkBytes: r.ChunkBytes,
			HealKeysPerSecond: r.HealKeysPerSecond, Epoch: epoch, Slots: node.shard.Slots, Logger: w.log.With("node", node.conn.Addr),
		}, w.pub)
		if err := live.Subscribe(ctx); err != nil {
			return nil, err
		}
	}
	mode := how.mode
	runSnapshot := !how.noSnapshot && !mode.liveOnly && (mode.snapshotOnly || mode.restart || status != redissrc.SnapshotDone)
	heal := how.heal
	switch {
	case live == nil || heal != "" || mode.restart:
	case status == redissrc.SnapshotInProgress && runSnapshot:
		heal = "resuming after cutover stopped during the snapshot: keys copied before the stop may have changed since"
	case status == redissrc.SnapshotDone || (mode.liveOnly && ranBefore):
		heal = "cutover was not running: changes made meanwhile were not captured"
	}
	w.log.Info("source node starting", "node", node.conn.Addr, "slots", len(node.shard.Slots) > 0, "snapshot", runSnapshot,
		"live", live != nil, "heal", heal != "")

	ctx, stop := context.WithCancel(ctx)
	nr := &nodeRun{node: node, live: live, stop: stop, done: make(chan struct{}), log: w.log.With("node", node.conn.Addr)}
	if runSnapshot {
		nr.snap = snap
	}
	go func() {
		nr.err = nr.run(ctx, heal, mode.snapshotOnly)
		close(nr.done)
	}()
	return nr, nil
}

func (nr *nodeRun) run(ctx context.Context, heal string, snapshotOnly bool) error {
	liveErr := make(chan error, 1)
	if nr.live != nil {
		go func() { liveErr <- nr.live.Run(ctx) }()
	}
	if nr.snap != nil {
		if err := nr.snap.Run(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("snapshot of %s stopped: %w (run the same command again to resume)", nr.node.conn.Addr, err)
		}
		p := nr.snap.Progress()
		nr.log.Info("snapshot published", "keys", p.Scanned, "events", p.Events)
	}
	if snapshotOnly || nr.live == nil {
		return nil
	}
	nr.live.SnapshotDone()
	if heal != "" {
		nr.live.RequestHeal(heal)
	}
	if err := <-liveErr; err != nil {
		return fmt.Errorf("live capture of %s: %w", nr.node.conn.Addr, err)
	}
	return nil
}

func (w *wiring) newNodeSnapshot(node *sourceNode, restart bool, epoch *pipeline.Epoch) (*redissrc.Snapshot, error) {
	r := w.cfg.Source.Redis
	types, err := parseTypes(r.Types)
	if err != nil {
		return nil, err
	}
	return redissrc.NewSnapshot(node.cl, node.conn, redissrc.SnapshotOptions{
		Name: w.cfg.Name, Filter: filterOf(r), Types: types,
		ScanCount: r.ScanCount, Readers: r.Readers, MaxElements: r.MaxElements, MaxValueBytes: r.MaxValueBytes,
		ChunkElements: r.ChunkElements, ChunkBytes: r.ChunkBytes,
		KeysPerSecond: r.KeysPerSecond, Restart: restart, Epoch: epoch, Logger: w.log.With("node", node.conn.Addr),
	}, w.pub, w.store)
}

// nodeSet is the running nodes of a source, for reporting and for the
// cluster watcher.
type nodeSet struct {
	mu    sync.Mutex
	nodes map[string]*nodeRun // by address
	// finished keeps stopped nodes' counters in the totals.
	finished []*nodeRun
}

func newNodeSet() *nodeSet { return &nodeSet{nodes: map[string]*nodeRun{}} }

func (s *nodeSet) add(nr *nodeRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[nr.node.conn.Addr] = nr
}

func (s *nodeSet) remove(addr string) *nodeRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	nr := s.nodes[addr]
	delete(s.nodes, addr)
	if nr != nil {
		s.finished = append(s.finished, nr)
	}
	return nr
}

func (s *nodeSet) all() []*nodeRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*nodeRun, 0, len(s.nodes)+len(s.finished))
	for _, nr := range s.nodes {
		out = append(out, nr)
	}
	return append(out, s.finished...)
}

func (s *nodeSet) running() []*nodeRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*nodeRun, 0, len(s.nodes))
	for _, nr := range s.nodes {
		out = append(out, nr)
	}
	return out
}

// watchCluster follows the cluster's topology every 2s (see
// checkTopology) until ctx ends.
func (w *wiring) watchCluster(ctx context.Context, set *nodeSet, epoch *pipeline.Epoch, mode replicateMode, onEpoch func(uint64), failed chan<- error) {
	tick(ctx, 2*time.Second, func() { w.checkTopology(ctx, set, epoch, mode, onEpoch, failed) })
}

// checkTopology compares the cluster's masters with the running nodes.
// When a master failed over or slots moved, the version epoch moves on
// (the new master's clock may be behind), the nodes that no longer serve
// what they served stop, and each new master starts with a heal of its
// slots. A master that cannot be started yet is tried again next time.
func (w *wiring) checkTopology(ctx context.Context, set *nodeSet, epoch *pipeline.Epoch, mode replicateMode, onEpoch func(uint64), failed chan<- error) {
	shards, err := w.sourceShards(ctx)
	if err != nil {
		w.log.Warn("reading the cluster's topology failed", "err", err)
		return
	}
	running := set.running()
	var changed []redissrc.Shard
	for _, sh := range shards {
		if !slices.ContainsFunc(running, func(nr *nodeRun) bool { return nr.node.shard.Equal(sh) }) {
			changed = append(changed, sh)
		}
	}
	var gone []*nodeRun
	for _, nr := range running {
		if !slices.ContainsFunc(shards, nr.node.shard.Equal) {
			gone = append(gone, nr)
		}
	}
	if len(changed) == 0 && len(gone) == 0 {
		return
	}
	e := epoch.Bump()
	onEpoch(e)
	w.log.Warn("the cluster's topology changed: a new version epoch starts and the affected slots are healed",
		"new_masters", len(changed), "stopped_nodes", len(gone), "epoch", e)
	for _, nr := range gone {
		nr.stop()
		<-nr.done
		set.remove(nr.node.conn.Addr)
		nr.node.close()
	}
	for _, sh := range changed {
		node, err := w.openNode(ctx, sh)
		if err != nil {
			w.log.Warn("connecting to a new master failed; retrying", "node", sh.Addr, "err", err)
			continue
		}
		nr, err := w.startNode(ctx, node, epoch, true, nodeStart{mode: mode, noSnapshot: true,
			heal: "this master took over slots (failover or resharding): changes there may have been missed"})
		if err != nil {
			node.close()
			w.log.Warn("starting a new master failed; retrying", "node", sh.Addr, "err", err)
			continue
		}
		set.add(nr)
		go reportFailure(ctx, nr, failed)
	}
}

// reportFailure sends a node's error, if it fails on its own (not because
// it was stopped).
func reportFailure(ctx context.Context, nr *nodeRun, failed chan<- error) {
	<-nr.done
	if nr.err != nil && ctx.Err() == nil {
		select {
		case failed <- nr.err:
		default:
		}
	}
}
