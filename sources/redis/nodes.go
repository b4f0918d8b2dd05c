package redis

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
)

// sourceNode is one server the source reads: the standalone server, or one
// master of a cluster.
type sourceNode struct {
	shard Shard
	conn  redisconn.Conn
	cl    *goredis.Client
	own   bool // cl was opened for this node and is closed with it
}

func (n *sourceNode) close() {
	if n.own {
		n.cl.Close() //nolint:gosec // shutting down
	}
}

// openNode connects to one shard (the seed connection for a standalone
// server).
func (s *Source) openNode(ctx context.Context, shard Shard) (*sourceNode, error) {
	n, err := s.topology().open(ctx, shard)
	if err != nil {
		return nil, err
	}
	return &sourceNode{shard: shard, conn: n.Conn, cl: n.Client, own: n.own}, nil
}

// nodePublisher publishes a node's events under the source's context
// instead of the node's. A node is stopped on purpose when the cluster's
// topology changes; its events already handed over must still be
// delivered, because the producer fails a buffered record whose context
// ends, and one failed record stops the publisher — and with it every
// node of the source. A stopped node publishes nothing more; a node
// stopped while the producer's buffer is full waits for room.
type nodePublisher struct {
	pipeline.Publisher
	runCtx context.Context //nolint:containedctx // the source's run context, which must outlive the node's
}

func (p nodePublisher) Publish(ctx context.Context, b pipeline.Batch, onDurable func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return p.Publisher.Publish(p.runCtx, b, onDurable) //nolint:contextcheck // on purpose: the records must outlive the node (see nodePublisher)
}

func (p nodePublisher) Broadcast(ctx context.Context, e pipeline.Event, onDurable func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return p.Publisher.Broadcast(p.runCtx, e, onDurable) //nolint:contextcheck // on purpose: see nodePublisher
}

// nodeRun is one node's snapshot and live capture.
type nodeRun struct {
	node *sourceNode
	snap *Snapshot // nil when no snapshot runs
	live *Live     // nil when live capture does not run
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{} // closed when the node stopped; err is its result
	err  error         // nil when stopped by its context
}

// startShard opens a shard's node and starts it; heal, if not empty, is
// why it must heal at once instead of taking a snapshot (it took over
// slots whose changes may have been missed). A node that fails on its own
// sends its error to failed.
func (s *Source) startShard(ctx context.Context, sh Shard, heal string, failed chan<- error) error {
	node, err := s.openNode(ctx, sh)
	if err != nil {
		return err
	}
	nr, err := s.startNode(ctx, node, heal)
	if err != nil {
		node.close()
		return err
	}
	s.nodes.add(nr)
	go func() {
		<-nr.done
		if nr.err != nil && ctx.Err() == nil {
			select {
			case failed <- nr.err:
			default:
			}
		}
	}()
	return nil
}

// startNode subscribes to the node's changes and starts its snapshot and
// live capture in the background. What it runs follows from the mode and
// from what earlier runs left in the checkpoint store (see Source).
func (s *Source) startNode(ctx context.Context, node *sourceNode, heal string) (*nodeRun, error) {
	o, mode := s.opts, s.opts.Mode
	log := s.log.With("node", node.conn.Addr)
	pub := nodePublisher{Publisher: s.pub, runCtx: ctx}
	snap, err := NewSnapshot(node.cl, node.conn, SnapshotOptions{
		Name: o.Name, Filter: o.Filter, Types: o.Types, ScanCount: o.ScanCount, Readers: o.Readers,
		MaxElements: o.MaxElements, MaxValueBytes: o.MaxValueBytes, ChunkElements: o.ChunkElements, ChunkBytes: o.ChunkBytes,
		MaxRecordBytes: o.MaxRecordBytes, KeysPerSecond: o.KeysPerSecond, Restart: mode.Restart, Epoch: s.epoch,
		Slots: node.shard.Slots, Redirect: s.redirect, Logger: log,
	}, pub, s.ck)
	if err != nil {
		return nil, err
	}
	status, err := snap.Status(ctx)
	if err != nil {
		return nil, err
	}
	ranBefore := s.ranBefore || status != SnapshotNone
	var live *Live
	if !mode.SnapshotOnly {
		live = NewLive(node.cl, node.conn, LiveOptions{
			Name: o.Name, Filter: o.Filter, Types: o.Types, ScanCount: o.ScanCount, MaxElements: o.MaxElements,
			MaxValueBytes: o.MaxValueBytes, ChunkElements: o.ChunkElements, ChunkBytes: o.ChunkBytes, MaxRecordBytes: o.MaxRecordBytes,
			HealKeysPerSecond: o.HealKeysPerSecond, Epoch: s.epoch, Slots: node.shard.Slots, Elsewhere: s.lookAtTopology, Logger: log,
		}, pub)
		if err := live.Subscribe(ctx); err != nil {
			return nil, err
		}
	}
	runSnapshot := heal == "" && !mode.LiveOnly && (mode.SnapshotOnly || mode.Restart || status != SnapshotDone)
	nr := &nodeRun{node: node, live: live, done: make(chan struct{}), log: log}
	switch {
	case live == nil || heal != "":
	case runSnapshot && ranBefore:
		// Keys deleted while cutover was not running are still in the
		// target: a fresh snapshot sweeps them at its end, one that
		// resumes a saved cursor cannot (keys it copied before the stop
		// may have changed since) and is followed by a heal.
		snap.opts.Sweep = true
		snap.opts.BeforeSweep = live.barrier
	case !runSnapshot && ranBefore:
		heal = "cutover was not running: changes made meanwhile were not captured"
	}
	if runSnapshot {
		nr.snap = snap
	}
	log.Info("source node starting", "slots", len(node.shard.Slots) > 0, "snapshot", runSnapshot, "sweep", snap.opts.Sweep,
		"live", live != nil, "heal", heal != "")
	ctx, stop := context.WithCancel(ctx)
	nr.stop = stop
	go func() {
		nr.err = nr.run(ctx, s, heal)
		close(nr.done)
	}()
	return nr, nil
}

func (nr *nodeRun) run(ctx context.Context, s *Source, heal string) error {
	liveErr := make(chan error, 1)
	if nr.live != nil {
		go func() { liveErr <- nr.live.Run(ctx) }()
		go s.watchClock(ctx, nr)
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
		switch {
		case heal != "":
		case nr.snap.opts.Sweep && !nr.snap.Swept():
			heal = "the snapshot could not sweep the keys deleted while cutover was not running"
		case p.Elsewhere > 0:
			heal = "the snapshot met keys in cluster slots moving to another master"
		}
	}
	if nr.live == nil {
		return nil
	}
	// The heal is requested before the snapshot is said to be done: a
	// drain waits for the snapshot, then for the heals requested by then.
	if heal != "" {
		nr.live.RequestHeal(heal)
	}
	nr.live.SnapshotDone()
	if err := <-liveErr; err != nil && ctx.Err() == nil {
		return fmt.Errorf("live capture of %s: %w", nr.node.conn.Addr, err)
	}
	return nil
}

// halt stops the node and waits until it has: its reads are over.
func (nr *nodeRun) halt() {
	nr.stop()
	<-nr.done
}

// nodeSet is the running nodes of a source.
type nodeSet struct {
	mu    sync.Mutex
	nodes map[string]*nodeRun // by address
	// finished keeps stopped nodes' counters in the totals.
	finished []*nodeRun

	topologyChanges, clockSteps atomic.Int64
}

func newNodeSet() *nodeSet { return &nodeSet{nodes: map[string]*nodeRun{}} }

func (s *nodeSet) add(nr *nodeRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[nr.node.conn.Addr] = nr
}

func (s *nodeSet) remove(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nr := s.nodes[addr]; nr != nil {
		delete(s.nodes, addr)
		s.finished = append(s.finished, nr)
	}
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

// stopAll stops every running node and waits for each.
func (s *nodeSet) stopAll() {
	for _, nr := range s.running() {
		nr.halt()
	}
}

// closeAll closes every node's connection; the nodes must be stopped.
func (s *nodeSet) closeAll() {
	for _, nr := range s.all() {
		nr.node.close()
	}
}

// lookAtTopology asks the topology watcher to look now (keys met in a
// migrating slot say the cluster is changing).
func (s *Source) lookAtTopology() {
	select {
	case s.checkTopology <- struct{}{}:
	default:
	}
}

// watchTopology follows the cluster's topology until ctx ends.
func (s *Source) watchTopology(ctx context.Context, failed chan<- error) {
	t := time.NewTicker(s.opts.TopologyEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.checkTopology:
		}
		if err := s.followTopology(ctx, failed); err != nil {
			select {
			case failed <- err:
			default:
			}
			return
		}
	}
}

// followTopology compares the cluster's masters with the running nodes.
// When a master failed over or slots moved, the nodes that no longer serve
// what they served stop (so none of their reads is still in flight), a
// new version epoch starts (the new master's clock may be behind), and
// each master whose slots changed starts again with a heal of its slots.
// A master that cannot be started yet is tried again next time. Only a
// failure to save the new epoch is returned: without it nothing may be
// read.
func (s *Source) followTopology(ctx context.Context, failed chan<- error) error {
	shards, err := s.shards(ctx)
	if err != nil {
		s.log.Warn("reading the masters (cluster topology or Sentinel) failed; trying again", "err", err)
		return nil
	}
	running := s.nodes.running()
	var changed []Shard
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
		s.unstarted.Store(0)
		return nil
	}
	if len(gone) == 0 && slices.EqualFunc(shards, s.lastShards, Shard.Equal) {
		// The topology is the one already answered with a new epoch; only
		// masters that could not be started yet are missing. Moving the
		// epoch again for them would leave every heal incomplete.
		s.startShards(ctx, changed, failed)
		return nil
	}
	s.lastShards = shards
	s.nodes.topologyChanges.Add(1)
	what := "the cluster's topology changed"
	if s.opts.Sentinel != nil {
		what = "the sentinels name a new master (a failover)"
	}
	s.log.Warn(what+": a new version epoch starts and the masters whose slots changed are healed",
		"changed_masters", len(changed), "stopped_nodes", len(gone), "masters", shardAddrs(shards))
	for _, nr := range gone {
		nr.halt()
		s.nodes.remove(nr.node.conn.Addr)
		nr.node.close()
	}
	if err := s.advanceEpoch(ctx, what); err != nil {
		return err
	}
	s.startShards(ctx, changed, failed)
	return nil
}

// startShards starts the masters that took over slots, each with a heal,
// and counts those that could not be started (tried again next time).
func (s *Source) startShards(ctx context.Context, shards []Shard, failed chan<- error) {
	var unstarted int64
	for _, sh := range shards {
		if err := s.startShard(ctx, sh, "this master took over slots (failover or resharding): changes there may have been missed", failed); err != nil {
			s.log.Warn("starting a master failed; trying again", "node", sh.Addr, "err", err)
			unstarted++
		}
	}
	s.unstarted.Store(unstarted)
}

// shardAddrs lists the shards' addresses, for the log.
func shardAddrs(shards []Shard) []string {
	out := make([]string, len(shards))
	for i, sh := range shards {
		out[i] = sh.Addr
	}
	return out
}
