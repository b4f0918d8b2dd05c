package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline"
)

type replicateMode struct {
	snapshotOnly, liveOnly, noSink, restart bool
}

func newReplicateCmd() *cobra.Command {
	cfg := defaultConfig()
	var mode replicateMode
	cmd := &cobra.Command{
		Use:   "replicate",
		Short: "Copy a Redis database or DynamoDB table to the target, then follow its changes until stopped",
		Long: `replicate subscribes to the database's keyspace notifications, snapshots it
(as backfill does), and then keeps the target in step with every change —
writes to every type, deletes, expiries, evictions, renames, moves — until
it is stopped (SIGINT or SIGTERM). A notification only says that a key
changed: cutover re-reads the key and publishes its whole current state
with a new version, or a delete if it is gone.

Pub/sub loses messages when its connection drops, when Redis kills a slow
subscriber, and while cutover is not running; FLUSHDB, FLUSHALL and SWAPDB
send none at all. replicate notices each of these gaps and heals it: it
re-reads every key (paced by --heal-keys-per-second) and then has the sink
remove, from the target, the keys older than the heal's start, which are
the ones deleted during the gap. A restart heals the time it was down.

On Redis Cluster every master is snapshotted and followed (notifications
are local to a node); a failover or resharding starts a new version epoch
and heals the slots that changed hands.

It turns notify-keyspace-events on if it may (CONFIG SET); on managed
Redis set it to include KEA yourself.

With --source-table the source is a DynamoDB table: a parallel Scan, then
its DynamoDB Streams records (the stream must be on, view type
NEW_AND_OLD_IMAGES or NEW_IMAGE). The stream's position is taken before the
scan, so nothing written meanwhile is missed; records trimmed before they
were read (cutover down for more than 24 hours) are healed by a re-scan and
a sweep of the items deleted in between.

By default a sink worker runs in the same process; --no-sink runs only the
source, for sink workers started with "cutover sink".`,
		Example: `  cutover replicate --config pipeline.yaml
  cutover replicate --config pipeline.yaml --no-sink     # and: cutover sink --config pipeline.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, &cfg); err != nil {
				return err
			}
			if mode.snapshotOnly && mode.liveOnly {
				return &usageError{errors.New("--snapshot-only and --live-only exclude each other")}
			}
			what := "replicate"
			if mode.snapshotOnly {
				what = "replicate --snapshot-only"
			}
			return runReplicate(cmd.Context(), &cfg, mode, what, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	bindPipeline(fs, &cfg)
	fs.BoolVar(&mode.snapshotOnly, "snapshot-only", false, "only snapshot (no live changes); exit when it is published (and applied, with the sink)")
	fs.BoolVar(&mode.liveOnly, "live-only", false, "only follow changes from now on (no snapshot)")
	fs.BoolVar(&mode.noSink, "no-sink", false, "run only the source; apply with \"cutover sink\" processes")
	fs.BoolVar(&mode.restart, "restart", false, "discard an unfinished snapshot's checkpoint and start over")
	return cmd
}

// liveState is the source's pipeline-wide checkpoint: that live capture
// ran, the version epoch, and the newest server time published.
type liveState struct {
	Epoch     uint64    `json:"epoch"`
	MaxMicros uint64    `json:"max_micros"`
	Updated   time.Time `json:"updated"`
}

// runReplicate runs the source (and, unless mode.noSink, a sink worker)
// for every node: a snapshot, live capture, or both. backfill is this with
// snapshotOnly.
func runReplicate(ctx context.Context, cfg *Config, mode replicateMode, what string, out io.Writer) error {
	if cfg.sourceKind() == "dynamodb" {
		return runTableReplicate(ctx, cfg, mode, what, out)
	}
	log := newLogger(cfg)
	start := time.Now()
	withSink := !mode.noSink
	w, err := connect(ctx, cfg, log, parts{source: true, publisher: true, sink: withSink, worker: withSink,
		instanceID: "cutover-" + cfg.Name + "-inprocess"})
	if err != nil {
		return err
	}
	defer w.close()

	stateName := cfg.Name + "/redis/live"
	prev, ranBefore, err := w.loadLiveState(ctx, stateName)
	if err != nil {
		return err
	}
	shards, err := w.sourceShards(ctx)
	if err != nil {
		return err
	}
	epoch := pipeline.NewEpoch(prev.Epoch)
	state := liveState{Epoch: prev.Epoch, MaxMicros: prev.MaxMicros}
	saveState := func(ctx context.Context) {
		state.Epoch = epoch.Load()
		state.Updated = time.Now().UTC()
		if err := w.saveLiveState(ctx, stateName, state); err != nil && ctx.Err() == nil {
			log.Warn("saving the source's checkpoint failed", "err", err)
		}
	}

	set := newNodeSet()
	defer func() {
		for _, nr := range set.all() {
			nr.node.close()
		}
	}()
	for _, sh := range shards {
		node, err := w.openNode(ctx, sh)
		if err != nil {
			return err
		}
		if now, err := node.cl.Time(ctx).Result(); err == nil && uint64(now.UnixMicro()) < prev.MaxMicros && epoch.Load() == prev.Epoch {
			e := epoch.Bump()
			log.Warn("the source's clock is behind versions already published; starting a new version epoch so new reads win",
				"node", node.conn.Addr, "behind", time.Duration(prev.MaxMicros-uint64(now.UnixMicro()))*time.Microsecond, "epoch", e)
		}
		nr, err := w.startNode(ctx, node, epoch, ranBefore, nodeStart{mode: mode})
		if err != nil {
			node.close()
			return err
		}
		set.add(nr)
	}
	if !mode.snapshotOnly {
		saveState(ctx)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	failed := make(chan error, 1)
	for _, nr := range set.running() {
		go reportFailure(ctx, nr, failed)
	}
	var workerErr <-chan error
	if withSink {
		workerErr = w.runWorker(ctx)
	}
	rep := newReporter(w, set, start)
	go tick(ctx, cfg.ProgressInterval, rep.log)
	go rep.snapshotBar(ctx)
	if err := w.serveMetrics(ctx, rep); err != nil {
		return err
	}
	if !mode.snapshotOnly {
		go tick(ctx, 5*time.Second, func() {
			for _, nr := range set.all() {
				if nr.live != nil {
					state.MaxMicros = max(state.MaxMicros, nr.live.Stats().MaxMicros)
				}
			}
			saveState(ctx)
		})
		if w.rccl != nil {
			go w.watchCluster(ctx, set, epoch, mode, func(uint64) { saveState(ctx) }, failed)
		}
	}

	if mode.snapshotOnly {
		// Every node's snapshot, then (with the sink) everything applied.
		for _, nr := range set.running() {
			select {
			case <-nr.done:
				if nr.err != nil {
					cancel(nr.err)
					return stopNodes(w, set, workerErr, nr.err)
				}
			case err := <-workerErr:
				cancel(err)
				return fmt.Errorf("sink worker stopped: %w", err)
			case <-ctx.Done():
				return stopNodes(w, set, workerErr, fmt.Errorf("interrupted: %w (run the same command again to resume)", context.Cause(ctx)))
			}
		}
		if withSink {
			end, err := w.waitApplied(ctx, workerErr)
			rep.setEnd(end)
			if err != nil {
				cancel(err)
				return stopNodes(w, set, workerErr, err)
			}
		}
		cancel(nil)
		if err := stopNodes(w, set, workerErr, nil); err != nil {
			return err
		}
		return rep.summary(out, what, time.Since(start))
	}

	// Follow changes until stopped.
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-failed:
		runErr = err
	case err := <-workerErr:
		workerErr = nil
		runErr = fmt.Errorf("sink worker stopped: %w", err)
	}
	cancel(runErr)
	for _, nr := range set.all() {
		if nr.live != nil {
			state.MaxMicros = max(state.MaxMicros, nr.live.Stats().MaxMicros)
		}
	}
	saveState(context.WithoutCancel(ctx))
	if err := stopNodes(w, set, workerErr, runErr); err != nil {
		return err
	}
	log.Info("replicate stopped")
	return rep.summary(out, what, time.Since(start))
}

// stopNodes waits for every node and the worker to return (their context
// is already canceled), gives the producer a moment to deliver what it
// holds, and returns first.
func stopNodes(w *wiring, set *nodeSet, workerErr <-chan error, first error) error {
	for _, nr := range set.all() {
		nr.stop()
		<-nr.done
		if nr.err != nil && first == nil {
			first = nr.err
		}
	}
	return w.finish(workerErr, first)
}

// finish, once the source stopped, gives the producer a moment to deliver
// what it holds, waits for the worker (its context is already canceled),
// and returns first, or else the worker's error.
func (w *wiring) finish(workerErr <-chan error, first error) error {
	if w.pub != nil {
		flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.pub.Flush(flushCtx); err != nil && !errors.Is(err, context.Canceled) {
			w.log.Warn("some events were not delivered before stopping; a restart heals them", "err", err)
		}
	}
	if workerErr != nil {
		if err := <-workerErr; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (w *wiring) loadLiveState(ctx context.Context, name string) (liveState, bool, error) {
	var st liveState
	raw, err := w.store.Load(ctx, name)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, false, fmt.Errorf("source checkpoint %s is corrupt: %w (delete it; the next run heals)", name, err)
	}
	return st, true, nil
}

func (w *wiring) saveLiveState(ctx context.Context, name string, st liveState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return w.store.Save(ctx, name, raw)
}
