package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/report"
	"github.com/cutover/cutover/pipeline/kafka"
)

func newDrainCmd() *cobra.Command {
	cfg := config.Default()
	var output string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "drain",
		Short: "Wait until every change the source had seen when the command started is applied to the target",
		Long: `drain answers the question of the switch: has everything written to the
old store before now reached the new one? It exits 0 once every change
the running source had seen when drain started is applied to the target
(or dead-lettered), and prints how long that took.

It is exact, not a lag estimate. drain sends a request through the
control topic (<topic>.control) to the running source (replicate, with
or without --no-sink). The source makes sure it has published everything
it saw before the request — a Redis source every node's notifications
received and read, heals done; a DynamoDB source every stream shard read
past the request — and then publishes a barrier record to every
partition, after those events. drain waits until the sink group has
committed past every barrier: sink workers commit a record only after
everything before it was applied or dead-lettered.

While it waits it prints how many partitions have caught up. At --timeout
it exits 5 with the remaining lag of each partition and the sink worker
that owns it, or names the source that did not answer. --output json
prints the same as JSON for scripts.`,
		Example: `  cutover drain --config pipeline.yaml
  cutover drain --config pipeline.yaml --timeout 30m --output json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyReportConfig(cmd, &cfg, output); err != nil {
				return err
			}
			if timeout <= 0 {
				return &usageError{fmt.Errorf("--timeout must be positive, got %v", timeout)}
			}
			return runDrain(cmd.Context(), &cfg, timeout, output, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	config.BindFlags(cmd.Flags(), &cfg)
	cmd.Flags().StringVar(&output, "output", "text", "report format: text or json")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long, with exit status 5")
	return cmd
}

func runDrain(ctx context.Context, cfg *config.Config, timeout time.Duration, output string, out, errOut io.Writer) error {
	log := setup(cfg)
	w := &wiring{cfg: cfg, log: log}
	kcfg, err := w.kafkaConfig(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errDrainTimeout)
	defer cancel()
	var last report.DrainProgress
	st, err := kafka.Drain(ctx, kcfg, kafka.DrainOptions{
		Topic: cfg.Kafka.Topic, Group: cfg.Kafka.Group, ReplicationFactor: cfg.Kafka.ReplicationFactor, Logger: log,
		Progress: func(st kafka.DrainStatus) {
			if output == "text" {
				last.Print(errOut, st, time.Since(start), cfg.ProgressInterval)
			}
		},
	})
	rep := report.Drain{DrainStatus: st, Pipeline: cfg.Name, Topic: cfg.Kafka.Topic, Group: cfg.Kafka.Group,
		TookSecs: time.Since(start).Seconds()}
	if err != nil && !errors.Is(err, kafka.ErrNotDrained) {
		return err
	}
	if err != nil {
		rep.Problem = report.DrainProblem(cfg, st)
	}
	if output == "json" {
		if err := report.WriteJSON(out, rep); err != nil {
			return err
		}
	} else {
		report.PrintDrain(out, rep)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errDrainTimeout):
		return &exitError{code: exitNotDrained, err: fmt.Errorf("not drained after %v: %s", timeout, rep.Problem)}
	default:
		return fmt.Errorf("interrupted before the drain was done: %s", rep.Problem)
	}
}

var errDrainTimeout = errors.New("--timeout passed")
