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

type replayTarget struct {
	beginning bool
	at        string // RFC 3339
	offsets   string // "partition:offset,…"
	dryRun    bool
	noApply   bool
}

func newReplayCmd() *cobra.Command {
	cfg := config.Default()
	var rt replayTarget
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Move the sink's consumer group back and apply the topic again from there",
		Long: `replay moves the pipeline's consumer group to an earlier point of the topic —
its beginning (--to-beginning), a moment (--to-time, Kafka's offsets by
timestamp) or explicit offsets (--to-offsets 0:1200,1:980) — and applies
the events from there to the current end, then exits. Use it after a
failure of the target, or to rebuild a target that was restored from an
older backup.

Replaying cannot move the target backwards: every write is conditional on
its version, so an event older than what the target holds is skipped (and
counted), and a deleted key's tombstone stops older upserts.

The group must be idle: stop every sink worker of the pipeline first
(replay checks and refuses otherwise, since a running worker would commit
over the new offsets). --dry-run shows what would move; --no-apply only
moves the offsets, for sink workers to apply.`,
		Example: `  cutover replay --config pipeline.yaml --to-beginning --dry-run
  cutover replay --config pipeline.yaml --to-time 2026-11-20T14:00:00Z
  cutover replay --config pipeline.yaml --to-offsets 0:1200,3:900 --no-apply`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.Apply(cmd.Flags(), &cfg); err != nil {
				return err
			}
			n := 0
			for _, set := range []bool{rt.beginning, rt.at != "", rt.offsets != ""} {
				if set {
					n++
				}
			}
			if n != 1 {
				return &usageError{errors.New("give exactly one of --to-beginning, --to-time and --to-offsets")}
			}
			return runReplay(cmd.Context(), &cfg, rt, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	config.BindFlags(fs, &cfg)
	fs.BoolVar(&rt.beginning, "to-beginning", false, "replay everything the topic still holds")
	fs.StringVar(&rt.at, "to-time", "", "replay from the first event at or after this time (RFC 3339, e.g. 2026-11-20T14:00:00Z)")
	fs.StringVar(&rt.offsets, "to-offsets", "", "replay from these offsets: partition:offset,… (other partitions keep theirs)")
	fs.BoolVar(&rt.dryRun, "dry-run", false, "show what would move, change nothing")
	fs.BoolVar(&rt.noApply, "no-apply", false, "only move the offsets; sink workers apply")
	return cmd
}

func runReplay(ctx context.Context, cfg *config.Config, rt replayTarget, out io.Writer) error {
	to := kafka.ReplayTarget{Beginning: rt.beginning, Offsets: rt.offsets}
	if rt.at != "" {
		at, err := time.Parse(time.RFC3339, rt.at)
		if err != nil {
			return &usageError{fmt.Errorf("--to-time %q: %w (want RFC 3339, e.g. 2026-11-20T14:00:00Z)", rt.at, err)}
		}
		to.At = at
	}
	log := setup(cfg)
	start := time.Now()
	kcfg, err := (&wiring{cfg: cfg, log: log}).kafkaConfig(ctx)
	if err != nil {
		return err
	}
	kcfg.ClientID += "-replay"
	admin, err := kafka.Connect(ctx, kcfg)
	if err != nil {
		return err
	}
	defer admin.Close()
	grp, topic := cfg.Kafka.Group, cfg.Kafka.Topic

	if err := kafka.WaitGroupIdle(ctx, admin, grp, cfg.Kafka.SessionTimeout, log); err != nil {
		return err
	}
	moves, err := kafka.PlanReplay(ctx, admin, grp, topic, to)
	var oe *kafka.OffsetsError
	if errors.As(err, &oe) {
		// kafka's message starts with "offsets": it becomes the flag's.
		return &usageError{fmt.Errorf("--to-%w", err)}
	}
	if err != nil {
		return err
	}
	report.PrintReplay(out, topic, grp, moves)
	if rt.dryRun {
		fmt.Fprintln(out, "\n--dry-run: nothing changed")
		return nil
	}
	if err := kafka.CommitGroupOffsets(ctx, admin, grp, topic, moves.From); err != nil {
		return err
	}
	log.Info("group moved", "group", grp, "events_to_apply", moves.ToApply())
	if rt.noApply {
		fmt.Fprintln(out, "\noffsets moved; start sink workers to apply")
		return nil
	}

	w, err := connect(ctx, cfg, log, parts{sink: true, worker: true, instanceID: "cutover-" + cfg.Name + "-replay"})
	if err != nil {
		return err
	}
	defer w.close()
	w.pcl = admin // for end offsets
	workerCtx, stop := context.WithCancel(ctx)
	defer stop()
	workerErr := w.runWorker(workerCtx)
	rep := w.reporter(start, nil)
	go tick(workerCtx, cfg.ProgressInterval, rep.Log)
	if err := w.serveMetrics(workerCtx, rep); err != nil {
		return err
	}
	got, err := w.waitApplied(ctx, workerErr)
	rep.SetEnd(got)
	stop()
	if werr := <-workerErr; err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	return summary(rep, out, "replay")
}
