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
	redissrc "github.com/cutover/cutover/sources/redis"
)

type replicateMode struct {
	snapshotOnly, liveOnly, noSink, restart bool
}

func newReplicateCmd() *cobra.Command {
	cfg := defaultConfig()
	var mode replicateMode
	cmd := &cobra.Command{
		Use:   "replicate",
		Short: "Copy a Redis database to the target, then follow its changes until stopped",
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

It turns notify-keyspace-events on if it may (CONFIG SET); on managed
Redis set it to include KEA yourself.

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
			return runReplicate(cmd.Context(), &cfg, mode, cmd.OutOrStdout())
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

// liveState is the live capture's checkpoint: that it ran, its version
// epoch, and the newest server time it published.
type liveState struct {
	Epoch     uint64    `json:"epoch"`
	MaxMicros uint64    `json:"max_micros"`
	Updated   time.Time `json:"updated"`
}

func runReplicate(ctx context.Context, cfg *Config, mode replicateMode, out io.Writer) error {
	log := newLogger(cfg)
	start := time.Now()
	withSink := !mode.noSink
	w, err := connect(ctx, cfg, log, parts{source: true, publisher: true, sink: withSink, worker: withSink, instanceID: "cutover-" + cfg.Name + "-inprocess"})
	if err != nil {
		return err
	}
	defer w.close()

	liveName := fmt.Sprintf("%s/redis/%s/db%d/live", cfg.Name, w.rconn.Addr, w.rconn.DB)
	prev, ranBefore, err := w.loadLiveState(ctx, liveName)
	if err != nil {
		return err
	}
	state := liveState{Epoch: prev.Epoch, MaxMicros: prev.MaxMicros}
	if now, err := w.rcl.Time(ctx).Result(); err == nil && uint64(now.UnixMicro()) < prev.MaxMicros {
		state.Epoch++
		log.Warn("the source's clock is behind versions already published; starting a new version epoch so new reads win",
			"behind", time.Duration(prev.MaxMicros-uint64(now.UnixMicro()))*time.Microsecond, "epoch", state.Epoch)
	}
	snap, err := w.newSnapshot(mode.restart, state.Epoch)
	if err != nil {
		return err
	}
	snapStatus, err := snap.Status(ctx)
	if err != nil {
		return err
	}

	var live *redissrc.Live
	if !mode.snapshotOnly {
		r := cfg.Source.Redis
		types, err := parseTypes(r.Types)
		if err != nil {
			return err
		}
		live = redissrc.NewLive(w.rcl, w.rconn, redissrc.LiveOptions{
			Name: cfg.Name, Filter: filterOf(r), Types: types, ScanCount: r.ScanCount, MaxElements: r.MaxElements,
			MaxValueBytes: r.MaxValueBytes, ChunkElements: r.ChunkElements, ChunkBytes: r.ChunkBytes,
			HealKeysPerSecond: r.HealKeysPerSecond, Epoch: state.Epoch, Logger: log,
		}, w.pub)
		if err := live.Subscribe(ctx); err != nil {
			return err
		}
		state.Updated = time.Now().UTC()
		if err := w.saveLiveState(ctx, liveName, state); err != nil {
			return err
		}
	}

	// What the previous run left behind decides what this one does.
	runSnapshot := !mode.liveOnly && (mode.snapshotOnly || mode.restart || snapStatus != redissrc.SnapshotDone)
	heal := ""
	switch {
	case live == nil:
	case mode.restart:
	case snapStatus == redissrc.SnapshotInProgress && runSnapshot:
		heal = "resuming after cutover stopped during the snapshot: keys copied before the stop may have changed since"
	case snapStatus == redissrc.SnapshotDone || (mode.liveOnly && ranBefore):
		heal = "cutover was not running: changes made meanwhile were not captured"
	}
	log.Info("replicate starting", "redis", cfg.Source.Redis.Addr, "db", cfg.Source.Redis.DB, "topic", cfg.Kafka.Topic,
		"snapshot", runSnapshot, "live", live != nil, "sink", withSink, "epoch", state.Epoch)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var workerErr <-chan error
	if withSink {
		workerErr = w.runWorker(ctx)
	}
	liveErr := make(chan error, 1)
	if live != nil {
		go func() { liveErr <- live.Run(ctx) }()
		go progressTicker(ctx, 5*time.Second, func() {
			state.MaxMicros = max(state.MaxMicros, live.Stats().MaxMicros)
			state.Updated = time.Now().UTC()
			if err := w.saveLiveState(ctx, liveName, state); err != nil && ctx.Err() == nil {
				log.Warn("saving the live checkpoint failed", "err", err)
			}
		})
	}
	var snapRef *redissrc.Snapshot
	if runSnapshot {
		snapRef = snap
	}
	rep := newReporter(w, snapRef, live, start)
	go progressTicker(ctx, cfg.ProgressInterval, rep.log)

	if runSnapshot {
		if err := snap.Run(ctx); err != nil {
			cancel(err)
			return stopAll(w, live, liveErr, workerErr, fmt.Errorf("snapshot stopped: %w (run the same command again to resume)", err))
		}
		log.Info("snapshot published", "events", snap.Progress().Events)
	}
	if live != nil {
		live.SnapshotDone()
		if heal != "" {
			live.RequestHeal(heal)
		}
	}
	if mode.snapshotOnly {
		if withSink {
			end, err := w.waitApplied(ctx, workerErr)
			rep.setEnd(end)
			if err != nil {
				return stopAll(w, live, liveErr, workerErr, err)
			}
		}
		cancel(nil)
		if err := stopAll(w, live, liveErr, workerErr, nil); err != nil {
			return err
		}
		return rep.summary(out, "replicate --snapshot-only", time.Since(start))
	}

	// Follow changes until stopped.
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-liveErr:
		liveErr = nil
		runErr = fmt.Errorf("live capture stopped: %w", err)
	case err := <-workerErr:
		workerErr = nil
		runErr = fmt.Errorf("sink worker stopped: %w", err)
	}
	cancel(runErr)
	if live != nil {
		state.MaxMicros = max(state.MaxMicros, live.Stats().MaxMicros)
		state.Updated = time.Now().UTC()
		if err := w.saveLiveState(context.WithoutCancel(ctx), liveName, state); err != nil {
			log.Warn("saving the live checkpoint failed", "err", err)
		}
	}
	if err := stopAll(w, live, liveErr, workerErr, runErr); err != nil {
		return err
	}
	log.Info("replicate stopped")
	return rep.summary(out, "replicate", time.Since(start))
}

// stopAll waits for live capture and the worker to return (their context
// is already canceled), gives the producer a moment to deliver what it
// holds, and returns first.
func stopAll(w *wiring, live *redissrc.Live, liveErr, workerErr <-chan error, first error) error {
	if live != nil && liveErr != nil {
		if err := <-liveErr; err != nil && first == nil {
			first = err
		}
	}
	if w.pub != nil {
		flushCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.pub.Flush(flushCtx); err != nil && first == nil && !errors.Is(err, context.Canceled) {
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
		return st, false, fmt.Errorf("live checkpoint %s is corrupt: %w (delete it; the next run heals)", name, err)
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
