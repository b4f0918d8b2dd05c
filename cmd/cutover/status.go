package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/report"
	"github.com/cutover/cutover/pipeline/kafka"
)

func newStatusCmd() *cobra.Command {
	cfg := config.Default()
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a pipeline's checkpoints, sink workers, consumer lag and dead letters",
		Long: `status reads the pipeline's checkpoints (snapshot cursors and scan
segments, stream and live-capture positions, with when each was saved)
and asks Kafka for the consumer group's members, its committed offsets,
the lag of every partition and the number of records in the dead-letter
topic. It connects to Kafka and reads the checkpoint directory; it does
not touch the source or the target. Secrets are never printed.`,
		Example: `  cutover status --config pipeline.yaml
  cutover status --config pipeline.yaml --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyReportConfig(cmd, &cfg, output); err != nil {
				return err
			}
			rep, err := pipelineStatus(cmd.Context(), &cfg)
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			report.PrintStatus(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	config.BindFlags(cmd.Flags(), &cfg)
	cmd.Flags().StringVar(&output, "output", "text", "report format: text or json")
	return cmd
}

func pipelineStatus(ctx context.Context, cfg *config.Config) (*report.Status, error) {
	rep := &report.Status{Pipeline: cfg.Name, Topic: cfg.Kafka.Topic, Group: cfg.Kafka.Group}
	rep.SourceMaster = sentinelMaster(ctx, cfg.Source.Redis.Sentinel, cfg.Source.Redis.TLS, "source.redis.tls")
	rep.TargetMaster = sentinelMaster(ctx, cfg.Sink.Redis.Sentinel, cfg.Sink.Redis.TLS, "sink.redis.tls")
	store, err := checkpoint.NewFileStore(cfg.Checkpoint.Dir)
	if err != nil {
		return nil, err
	}
	names, err := store.List(ctx, cfg.Name+"/")
	if err != nil {
		return nil, fmt.Errorf("list checkpoints in %s: %w", cfg.Checkpoint.Dir, err)
	}
	slices.Sort(names)
	for _, n := range names {
		raw, err := store.Load(ctx, n)
		if err != nil {
			return nil, err
		}
		saved, err := store.Modified(n)
		if err != nil {
			return nil, err
		}
		if !json.Valid(raw) {
			raw, _ = json.Marshal(fmt.Sprintf("%d bytes", len(raw)))
		}
		rep.Checkpoints = append(rep.Checkpoints, report.CheckpointStatus{Name: n, Saved: saved.UTC(), AgeSecs: time.Since(saved).Seconds(), State: raw})
	}
	w := &wiring{cfg: cfg, log: setup(cfg)}
	kcfg, err := w.kafkaConfig(ctx)
	if err != nil {
		return nil, err
	}
	cl, err := kafka.Connect(ctx, kcfg)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if rep.Workers, err = kafka.GroupMembers(ctx, cl, cfg.Kafka.Group); err != nil {
		return nil, err
	}
	end, err := offsetsIfAny(kafka.EndOffsets(ctx, cl, cfg.Kafka.Topic))
	if err != nil {
		return nil, err
	}
	committed, err := kafka.CommittedOffsets(ctx, cl, cfg.Kafka.Group, cfg.Kafka.Topic)
	if err != nil {
		return nil, err
	}
	for _, p := range slices.Sorted(maps.Keys(end)) {
		c, ok := committed[p]
		ps := report.PartitionStatus{Partition: p, End: end[p], Committed: c}
		if !ok {
			ps.Committed = -1
			c = 0
		}
		ps.Lag = max(0, end[p]-c)
		rep.Lag += ps.Lag
		rep.Partitions = append(rep.Partitions, ps)
	}
	dlEnd, err := offsetsIfAny(kafka.EndOffsets(ctx, cl, cfg.Kafka.DeadLetterTopic))
	if err != nil {
		return nil, err
	}
	dlStart, err := offsetsIfAny(kafka.StartOffsets(ctx, cl, cfg.Kafka.DeadLetterTopic))
	if err != nil {
		return nil, err
	}
	for p, e := range dlEnd {
		rep.DeadLetters += e - dlStart[p]
	}
	return rep, nil
}

// applyReportConfig is config.Apply for a command that prints a report
// as --output asks.
func applyReportConfig(cmd *cobra.Command, cfg *config.Config, output string) error {
	if err := config.Apply(cmd.Flags(), cfg); err != nil {
		return err
	}
	if p := outputProblem(output); p != "" {
		return &config.Error{Problems: []string{p}}
	}
	return nil
}

// outputProblem is what is wrong with an --output value, or "".
func outputProblem(output string) string {
	if output != "text" && output != "json" {
		return fmt.Sprintf("--output: %q must be text or json", output)
	}
	return ""
}

// offsetsIfAny treats a topic that does not exist yet (the pipeline never
// ran) as one without records.
func offsetsIfAny(offsets map[int32]int64, err error) (map[int32]int64, error) {
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return map[int32]int64{}, nil
	}
	return offsets, err
}

// sentinelMaster is the master a Sentinel group names now ("" without
// sentinels), or why it could not be asked.
func sentinelMaster(ctx context.Context, c config.SentinelConfig, t config.TLSConfig, path string) string {
	if len(c.Addrs) == 0 {
		return ""
	}
	tlsConf, err := t.Build(path)
	if err != nil {
		return "unknown: " + err.Error()
	}
	addr, err := c.Group(tlsConf).Master(ctx)
	if err != nil {
		return "unknown: " + err.Error()
	}
	return addr
}
