package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

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
				return report.WriteJSON(cmd.OutOrStdout(), rep)
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
	if err := rep.ReadCheckpoints(ctx, store); err != nil {
		return nil, err
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
	lag, err := kafka.GroupLag(ctx, cl, cfg.Kafka.Group, cfg.Kafka.Topic)
	if err != nil {
		return nil, err
	}
	rep.SetLag(lag)
	if rep.DeadLetters, err = kafka.HeldRecords(ctx, cl, cfg.Kafka.DeadLetterTopic); err != nil {
		return nil, err
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
