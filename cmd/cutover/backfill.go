package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	redissrc "github.com/cutover/cutover/sources/redis"
)

func newBackfillCmd() *cobra.Command {
	cfg := defaultConfig()
	return newBackfillCmdWith(&cfg)
}

// newBackfillCmdWith binds the command's flags to cfg, which holds the
// defaults they show.
func newBackfillCmdWith(cfg *Config) *cobra.Command {
	var restart bool
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Copy every key of a Redis database to the target through Kafka, then exit",
		Long: `backfill snapshots one Redis logical database with SCAN, publishes one
versioned event per key to a Kafka topic, applies the events to the target
(a DynamoDB table, or a Redis database) with a sink worker in the same
process, and exits once every event published by the snapshot has been
applied (or dead-lettered).

An interrupted backfill resumes from its checkpointed SCAN cursor when run
again with the same --name and --checkpoint-dir; the sink resumes from its
consumer group's committed offsets. Repeating events is harmless: every
write is conditional on the event's version.

Keys that cannot be copied (too large for a Kafka record or a DynamoDB
item, a key that is not valid UTF-8 for an S key attribute, an unsupported
type such as a Redis stream) are reported, counted and written to the
dead-letter topic; backfill then exits with status 3.

For a copy that then keeps following changes, use replicate.`,
		Example: `  cutover backfill --config deploy/examples/redis-to-dynamodb.yaml
  cutover backfill --redis-addr 10.0.0.5:6379 --kafka-brokers kafka:9092 \
      --dynamodb-table users --create-table --include 'user:*' --name users`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, cfg); err != nil {
				return err
			}
			return runBackfill(cmd.Context(), cfg, restart, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	bindPipeline(fs, cfg)
	fs.BoolVar(&restart, "restart", false, "discard an unfinished snapshot's checkpoint and start over")
	return cmd
}

func runBackfill(ctx context.Context, cfg *Config, restart bool, out io.Writer) error {
	log := newLogger(cfg)
	start := time.Now()
	w, err := connect(ctx, cfg, log, parts{source: true, publisher: true, sink: true, worker: true, instanceID: "cutover-" + cfg.Name + "-inprocess"})
	if err != nil {
		return err
	}
	defer w.close()
	snap, err := w.newSnapshot(restart, 0)
	if err != nil {
		return err
	}
	log.Info("backfill starting", "redis", cfg.Source.Redis.Addr, "db", cfg.Source.Redis.DB, "topic", cfg.Kafka.Topic,
		"target", w.sink.describe(), "group", cfg.Kafka.Group, "checkpoint", snap.CheckpointName())

	// The sink worker runs alongside the snapshot; it stops once the
	// snapshot's last event is committed, or when ctx ends.
	workerCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	workerErr := w.runWorker(workerCtx)
	progressCtx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	r := newReporter(w, snap, nil, start)
	go progressTicker(progressCtx, cfg.ProgressInterval, r.log)

	if err := snap.Run(ctx); err != nil {
		stopWorker()
		if werr := <-workerErr; werr != nil {
			log.Warn("the sink worker stopped too", "err", werr)
		}
		return fmt.Errorf("snapshot stopped: %w (run the same command again to resume from the last checkpoint)", err)
	}
	log.Info("snapshot published, waiting for the sink to apply it", "events", snap.Progress().Events)
	end, err := w.waitApplied(ctx, workerErr)
	r.setEnd(end)
	if err != nil {
		stopWorker()
		if werr := <-workerErr; werr != nil {
			log.Warn("the sink worker stopped too", "err", werr)
		}
		return err
	}
	stopProgress()
	stopWorker()
	if err := <-workerErr; err != nil {
		return fmt.Errorf("sink worker: %w", err)
	}
	return r.summary(out, "backfill", time.Since(start))
}

// newSnapshot makes the snapshot of the source database.
func (w *wiring) newSnapshot(restart bool, epoch uint64) (*redissrc.Snapshot, error) {
	r := w.cfg.Source.Redis
	types, err := parseTypes(r.Types)
	if err != nil {
		return nil, err
	}
	return redissrc.NewSnapshot(w.rcl, w.rconn, redissrc.SnapshotOptions{
		Name: w.cfg.Name, Filter: filterOf(r), Types: types,
		ScanCount: r.ScanCount, Readers: r.Readers, MaxElements: r.MaxElements, MaxValueBytes: r.MaxValueBytes,
		ChunkElements: r.ChunkElements, ChunkBytes: r.ChunkBytes,
		KeysPerSecond: r.KeysPerSecond, Restart: restart, Epoch: epoch, Logger: w.log,
	}, w.pub, w.store)
}
