package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/report"
	"github.com/cutover/cutover/pipeline/kafka"
	redissrc "github.com/cutover/cutover/sources/redis"
)

type replicateMode struct {
	snapshotOnly, liveOnly, noSink, restart bool
}

func newReplicateCmd() *cobra.Command {
	cfg := config.Default()
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
			if err := config.Apply(cmd.Flags(), &cfg); err != nil {
				return err
			}
			if mode.snapshotOnly && mode.liveOnly {
				return &usageError{errors.New("--snapshot-only and --live-only exclude each other")}
			}
			what := "replicate"
			if mode.snapshotOnly {
				what = "replicate --snapshot-only"
			}
			return stoppedWhileStarting(cmd.Context(), runReplicate(cmd.Context(), &cfg, mode, what, cmd.OutOrStdout()))
		},
	}
	fs := cmd.Flags()
	config.BindFlags(fs, &cfg)
	fs.BoolVar(&mode.snapshotOnly, "snapshot-only", false, "only snapshot (no live changes); exit when it is published (and applied, with the sink)")
	fs.BoolVar(&mode.liveOnly, "live-only", false, "only follow changes from now on (no snapshot)")
	fs.BoolVar(&mode.noSink, "no-sink", false, "run only the source; apply with \"cutover sink\" processes")
	fs.BoolVar(&mode.restart, "restart", false, "discard an unfinished snapshot's checkpoint and start over")
	return cmd
}

// runReplicate runs the source (and, unless mode.noSink, a sink worker):
// a snapshot, live capture, or both. backfill is this with snapshotOnly.
func runReplicate(ctx context.Context, cfg *config.Config, mode replicateMode, what string, out io.Writer) error {
	log := setup(cfg)
	start := time.Now()
	w, err := connect(ctx, cfg, log, parts{source: true, publisher: true, sink: !mode.noSink, worker: !mode.noSink,
		instanceID: "cutover-" + cfg.Name + "-inprocess"})
	if err != nil {
		return err
	}
	defer w.close()
	var src source
	if cfg.SourceKind() == "dynamodb" {
		src, err = w.tableSource(mode)
	} else {
		src, err = w.redisSource(mode)
	}
	if err != nil {
		return err
	}
	return w.runSource(ctx, src, mode, what, out, w.reporter(start, src))
}

// redisSource is the Redis source of a replicate or backfill.
func (w *wiring) redisSource(mode replicateMode) (*redissrc.Source, error) {
	cfg := w.cfg
	r := cfg.Source.Redis
	types, err := parseTypes(r.Types)
	if err != nil {
		return nil, err
	}
	return redissrc.NewSource(w.rconn, w.rcl, w.rccl, redissrc.SourceOptions{
		Name: cfg.Name, Filter: filterOf(r), Types: types,
		Mode:      redissrc.Mode{SnapshotOnly: mode.snapshotOnly, LiveOnly: mode.liveOnly, Restart: mode.restart},
		ScanCount: r.ScanCount, Readers: r.Readers, MaxElements: r.MaxElements, MaxValueBytes: r.MaxValueBytes,
		ChunkElements: r.ChunkElements, ChunkBytes: r.ChunkBytes, MaxRecordBytes: cfg.Kafka.MaxRecordBytes,
		KeysPerSecond: r.KeysPerSecond, HealKeysPerSecond: r.HealKeysPerSecond, Sentinel: w.rsentinel, Logger: w.log,
	}, w.pub, w.store), nil
}

// source is what runSource runs: a source that can also answer drains.
type source interface {
	Run(ctx context.Context) error
	kafka.DrainSource
}

// runSource runs a source and, unless mode.noSink, a sink worker in this
// process: until the source's snapshot is published and applied
// (snapshotOnly), or until ctx ends or either fails. Following changes,
// it also answers `cutover drain`.
func (w *wiring) runSource(ctx context.Context, src source, mode replicateMode, what string, out io.Writer, rep *report.Reporter) error {
	unlock, err := w.lockSource()
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	srcErr := make(chan error, 1)
	go func() { srcErr <- src.Run(ctx) }()
	var workerErr <-chan error
	if !mode.noSink {
		workerErr = w.runWorker(ctx)
	}
	go tick(ctx, w.cfg.ProgressInterval, rep.Log)
	go rep.SnapshotBar(ctx)
	if !mode.snapshotOnly {
		w.serveDrains(ctx, src)
	}

	stop := func(first error) error {
		cancel(first)
		if err := <-srcErr; err != nil && first == nil && !errors.Is(err, context.Canceled) {
			first = err
		}
		return w.finish(workerErr, first)
	}
	if err := w.serveMetrics(ctx, rep); err != nil {
		return stop(err)
	}
	if mode.snapshotOnly {
		select {
		case err := <-srcErr:
			srcErr <- nil // stop reads it again
			if err != nil {
				return stop(err)
			}
		case err := <-workerErr:
			workerErr = nil
			return stop(fmt.Errorf("sink worker stopped: %w", err))
		case <-ctx.Done():
			return stop(fmt.Errorf("interrupted: %w (run the same command again to resume)", context.Cause(ctx)))
		}
		if !mode.noSink {
			end, err := w.waitApplied(ctx, workerErr)
			rep.SetEnd(end)
			if err != nil {
				return stop(err)
			}
		}
		if err := stop(nil); err != nil {
			return err
		}
		return summary(rep, out, what)
	}

	// Follow changes until stopped.
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-srcErr:
		srcErr <- nil
		runErr = err
		if runErr == nil {
			runErr = errors.New("the source stopped by itself")
		}
	case err := <-workerErr:
		workerErr = nil
		runErr = fmt.Errorf("sink worker stopped: %w", err)
	}
	if err := stop(runErr); err != nil {
		return err
	}
	w.log.Info("replicate stopped")
	return summary(rep, out, what)
}

// lockSource makes sure no other source of this pipeline runs from the
// same checkpoint directory: two would each start their own version
// epochs, and the one started last would outrank the other's newer reads.
func (w *wiring) lockSource() (unlock func(), err error) {
	fs, ok := w.store.(*checkpoint.FileStore)
	if !ok {
		return func() {}, nil
	}
	unlock, err = fs.Lock(w.cfg.Name + "/source")
	if errors.Is(err, checkpoint.ErrLocked) {
		return nil, fmt.Errorf("another cutover source of pipeline %q is running with checkpoint directory %s: %w; stop it first "+
			"(a backfill and a replicate of one pipeline must not run at once)", w.cfg.Name, fs.Dir(), err)
	}
	return unlock, err
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
