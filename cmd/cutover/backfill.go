package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/kafka"
	ddbsink "github.com/cutover/cutover/sinks/dynamodb"
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
		Short: "Copy every key of a Redis database to DynamoDB through Kafka, then exit",
		Long: `backfill snapshots one Redis logical database with SCAN, publishes one
versioned event per key to a Kafka topic, applies the events to a DynamoDB
table with a sink worker in the same process, and exits once every event
published by the snapshot has been applied (or dead-lettered).

An interrupted backfill resumes from its checkpointed SCAN cursor when run
again with the same --name and --checkpoint-dir; the sink resumes from its
consumer group's committed offsets. Repeating events is harmless: every
write is conditional on the event's version.

Keys that cannot be copied (too large for a Kafka record or a DynamoDB
item, a key that is not valid UTF-8 for an S key attribute, an unsupported
type such as a Redis stream) are reported, counted and written to the
dead-letter topic; backfill then exits with status 3.`,
		Example: `  cutover backfill --config deploy/examples/redis-to-dynamodb.yaml
  cutover backfill --redis-addr 10.0.0.5:6379 --kafka-brokers kafka:9092 \
      --dynamodb-table users --create-table --include 'user:*' --name users`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, cfg); err != nil {
				return err
			}
			return runBackfill(cmd.Context(), cfg, backfillRun{restart: restart, out: cmd.OutOrStdout()})
		},
	}
	fs := cmd.Flags()
	bindPipeline(fs, cfg)
	fs.BoolVar(&restart, "restart", false, "discard an unfinished snapshot's checkpoint and start over")
	return cmd
}

type backfillRun struct {
	restart bool
	out     io.Writer
}

// backfill holds the connected pieces of one run.
type backfill struct {
	cfg    *Config
	log    *slog.Logger
	snap   *redissrc.Snapshot
	pub    *kafka.Publisher
	worker *kafka.Worker
	sink   *ddbsink.Sink
}

func runBackfill(ctx context.Context, cfg *Config, run backfillRun) error {
	log := newLogger(cfg)
	start := time.Now()
	r := cfg.Source.Redis

	store, err := checkpoint.NewFileStore(cfg.Checkpoint.Dir)
	if err != nil {
		return err
	}
	conn := redissrc.Conn{Addr: r.Addr, Username: r.Username, Password: r.Password, DB: r.DB, PoolSize: r.Readers + 2}
	rcl, err := redissrc.Connect(ctx, conn)
	if err != nil {
		return err
	}
	defer rcl.Close()

	kcfg := kafka.Config{Brokers: cfg.Kafka.Brokers, ClientID: "cutover-" + cfg.Name}
	popts := kafka.PublisherOptions{Topic: cfg.Kafka.Topic, DeadLetterTopic: cfg.Kafka.DeadLetterTopic,
		MaxRecordBytes: cfg.Kafka.MaxRecordBytes, Logger: log}
	pcl, err := kafka.Connect(ctx, kcfg, kafka.ProducerOpts(popts)...)
	if err != nil {
		return err
	}
	defer pcl.Close()
	partitions, err := ensureTopics(ctx, pcl, cfg, log)
	if err != nil {
		return err
	}
	popts.Partitions = partitions

	sink, err := newDynamoDBSink(ctx, cfg, log)
	if err != nil {
		return err
	}

	wopts := kafka.WorkerOptions{Topic: cfg.Kafka.Topic, Group: cfg.Kafka.Group, DeadLetterTopic: cfg.Kafka.DeadLetterTopic, Logger: log}
	wcl, err := kafka.Connect(ctx, kcfg, kafka.WorkerOpts(wopts)...)
	if err != nil {
		return err
	}
	defer wcl.Close()
	worker, err := kafka.NewWorker(ctx, wcl, wopts, sink)
	if err != nil {
		return err
	}
	base, err := kafka.CommittedOffsets(ctx, pcl, cfg.Kafka.Group, cfg.Kafka.Topic)
	if err != nil {
		return err
	}

	pub, err := kafka.NewPublisher(ctx, pcl, popts)
	if err != nil {
		return err
	}
	types, err := parseTypes(r.Types)
	if err != nil {
		return err
	}
	snap, err := redissrc.NewSnapshot(rcl, conn, redissrc.SnapshotOptions{
		Name: cfg.Name, Filter: pipeline.KeyFilter{Include: r.Include, Exclude: r.Exclude}, Types: types,
		ScanCount: r.ScanCount, Readers: r.Readers, MaxElements: r.MaxElements, MaxValueBytes: r.MaxValueBytes,
		Restart: run.restart, Logger: log,
	}, pub, store)
	if err != nil {
		return err
	}
	b := &backfill{cfg: cfg, log: log, snap: snap, pub: pub, worker: worker, sink: sink}

	log.Info("backfill starting", "redis", r.Addr, "db", r.DB, "topic", cfg.Kafka.Topic, "table", cfg.Sink.DynamoDB.Table,
		"group", cfg.Kafka.Group, "checkpoint", snap.CheckpointName())

	// The sink worker runs alongside the snapshot; it stops when the
	// snapshot's last event is committed, or when ctx ends.
	workerCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	workerErr := make(chan error, 1)
	go func() { workerErr <- worker.Run(workerCtx) }()

	progressCtx, stopProgress := context.WithCancel(ctx)
	defer stopProgress()
	var ends atomic.Pointer[map[int32]int64] // set once the snapshot is published
	go b.reportProgress(progressCtx, cfg.ProgressInterval, start, &ends, base)

	if err := snap.Run(ctx); err != nil {
		stopWorker()
		if werr := <-workerErr; werr != nil {
			log.Warn("the sink worker stopped too", "err", werr)
		}
		return fmt.Errorf("snapshot stopped: %w (run the same command again to resume from the last checkpoint)", err)
	}
	end, err := kafka.EndOffsets(ctx, pcl, cfg.Kafka.Topic)
	if err != nil {
		return err
	}
	ends.Store(&end)
	log.Info("snapshot published, waiting for the sink to apply it", "events", snap.Progress().Events,
		"lag", worker.Progress().Lag(end, base))

	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	applied := make(chan error, 1)
	go func() { applied <- worker.Progress().WaitFor(waitCtx, end, base) }()
	select {
	case err := <-applied:
		if err != nil {
			stopWorker()
			if werr := <-workerErr; werr != nil {
				log.Warn("the sink worker stopped too", "err", werr)
			}
			return fmt.Errorf("interrupted while the sink was applying the snapshot: %w (run the same command again to finish)", err)
		}
	case err := <-workerErr:
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("sink stopped before applying the snapshot: %w (run the same command again: the sink resumes from its committed offsets)", err)
	}
	stopProgress()
	stopWorker()
	if err := <-workerErr; err != nil {
		return fmt.Errorf("sink worker: %w", err)
	}
	return b.summary(run.out, time.Since(start))
}

// ensureTopics creates the event and dead-letter topics if missing and
// returns the event topic's partition count.
func ensureTopics(ctx context.Context, cl *kgo.Client, cfg *Config, log *slog.Logger) (int32, error) {
	var partitions int32
	for _, name := range []string{cfg.Kafka.Topic, cfg.Kafka.DeadLetterTopic} {
		st, err := kafka.EnsureTopic(ctx, cl, kafka.TopicSpec{Name: name, Partitions: cfg.Kafka.Partitions, ReplicationFactor: cfg.Kafka.ReplicationFactor})
		if err != nil {
			return 0, err
		}
		if st.Created {
			log.Info("created topic", "topic", name, "partitions", st.Partitions, "replication_factor", cfg.Kafka.ReplicationFactor)
		}
		if name == cfg.Kafka.Topic {
			partitions = st.Partitions
		}
	}
	return partitions, nil
}

func parseTypes(names []string) ([]pipeline.Type, error) {
	var types []pipeline.Type
	for _, n := range names {
		t, err := pipeline.ParseType(n)
		if err != nil {
			return nil, err
		}
		types = append(types, t)
	}
	return types, nil
}

// reportProgress logs a progress line every interval until ctx ends.
func (b *backfill) reportProgress(ctx context.Context, every time.Duration, start time.Time, ends *atomic.Pointer[map[int32]int64], base map[int32]int64) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := b.snap.Progress()
		ws := b.worker.Stats()
		ss := b.sink.Stats()
		elapsed := time.Since(start)
		rate := float64(p.Scanned) / elapsed.Seconds()
		attrs := []any{"scanned", p.Scanned, "of", p.Total, "published", b.pub.Stats().Published,
			"applied", ws.Applied, "skipped_older", ws.SkippedOlder, "dead_lettered", ws.DeadLettered + b.pub.Stats().DeadLettered,
			"throttles", ss.Throttles, "keys_per_s", int(rate)}
		if p.Total > 0 && p.Scanned < p.Total && rate > 0 {
			attrs = append(attrs, "pct", fmt.Sprintf("%.1f", 100*float64(p.Scanned)/float64(p.Total)),
				"eta", time.Duration(float64(p.Total-p.Scanned)/rate*float64(time.Second)).Round(time.Second))
		}
		if e := ends.Load(); e != nil {
			attrs = append(attrs, "sink_lag", b.worker.Progress().Lag(*e, base))
		}
		b.log.Info("backfill progress", attrs...)
	}
}

// summary prints the outcome and returns exitDeadLettered if any key was
// not copied.
func (b *backfill) summary(w io.Writer, elapsed time.Duration) error {
	p := b.snap.Progress()
	ps := b.pub.Stats()
	ws := b.worker.Stats()
	ss := b.sink.Stats()
	dead := ps.DeadLettered + ws.DeadLettered
	r := b.cfg.Source.Redis
	row := func(label string, n int64, note string) {
		fmt.Fprintf(w, "  %-18s %12s  %s\n", label, group(n), note)
	}
	fmt.Fprintf(w, "\nbackfill of pipeline %q complete in %s\n", b.cfg.Name, elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  redis %s db %d → kafka topic %s → dynamodb table %s\n", r.Addr, r.DB, b.cfg.Kafka.Topic, b.cfg.Sink.DynamoDB.Table)
	resumed := ""
	if p.Resumed {
		resumed = "(resumed an interrupted snapshot; count includes the earlier run)"
	}
	row("keys scanned", p.Scanned, fmt.Sprintf("DBSIZE at start %s %s", group(p.Total), resumed))
	row("keys read", p.Events, "")
	row("events published", ps.Published, fmt.Sprintf("%.1f MB", float64(ps.Bytes)/1e6))
	row("items written", ws.Applied, fmt.Sprintf("%s DynamoDB writes, %s throttled and retried", group(ss.Writes), group(ss.Throttles)))
	row("skipped as older", ws.SkippedOlder, "target already held this version or a newer one")
	row("filtered", p.Filtered, "by pattern or type")
	row("vanished", p.Vanished, "deleted between SCAN and read")
	row("dead-lettered", dead, "topic "+b.cfg.Kafka.DeadLetterTopic)
	secs := elapsed.Seconds()
	fmt.Fprintf(w, "  %-18s %12s  keys/s\n", "rate", group(int64(float64(p.Events)/secs)))
	if dead > 0 {
		fmt.Fprintf(w, "\n%d keys were not copied; each is logged above with its reason and is in topic %s.\n", dead, b.cfg.Kafka.DeadLetterTopic)
		return &exitError{code: exitDeadLettered}
	}
	return nil
}

// group formats n with thousands separators.
func group(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + group(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
