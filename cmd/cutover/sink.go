package main

import (
	"context"
	"io"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/spf13/cobra"
)

func newSinkCmd() *cobra.Command {
	cfg := config.Default()
	var workerID string
	cmd := &cobra.Command{
		Use:   "sink",
		Short: "Run a sink worker: apply the pipeline's topic to the target until stopped",
		Long: `sink joins the pipeline's consumer group and applies its events to the
target until stopped (SIGINT or SIGTERM), committing offsets only after the
target accepted the writes. Run several for one pipeline to share the
topic's partitions; pair it with "cutover replicate --no-sink".`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.Apply(cmd.Flags(), &cfg); err != nil {
				return err
			}
			return stoppedWhileStarting(cmd.Context(), runSink(cmd.Context(), &cfg, workerID, cmd.OutOrStdout()))
		},
	}
	config.BindFlags(cmd.Flags(), &cfg)
	cmd.Flags().StringVar(&workerID, "worker-id", "", "a stable, unique name for this worker (e.g. a StatefulSet pod name): a restarted worker then takes its partitions back at once")
	return cmd
}

func runSink(ctx context.Context, cfg *config.Config, workerID string, out io.Writer) error {
	log := setup(cfg)
	start := time.Now()
	instance := ""
	if workerID != "" {
		instance = "cutover-" + cfg.Name + "-" + workerID
	}
	w, err := connect(ctx, cfg, log, parts{sink: true, worker: true, instanceID: instance})
	if err != nil {
		return err
	}
	defer w.close()
	log.Info("sink worker starting", "topic", cfg.Kafka.Topic, "group", cfg.Kafka.Group, "target", w.sink.describe())
	rep := w.reporter(start, nil)
	go tick(ctx, cfg.ProgressInterval, rep.Log)
	if err := w.serveMetrics(ctx, rep); err != nil {
		return err
	}
	if err := w.worker.Run(ctx); err != nil {
		return err
	}
	return summary(rep, out, "sink")
}
