package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/pipeline/kafka"
	"github.com/cutover/cutover/pipeline/plan"
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

	members, err := kafka.GroupMembers(ctx, admin, grp)
	if err != nil {
		return err
	}
	if len(members) > 0 {
		// A worker that was just stopped (or killed) may still be listed:
		// give it the session timeout to go before refusing.
		log.Info("waiting for sink workers to leave the group", "group", grp, "members", len(members), "up_to", cfg.Kafka.SessionTimeout)
		if members, err = kafka.WaitGroupEmpty(ctx, admin, grp, cfg.Kafka.SessionTimeout+2*time.Second, 500*time.Millisecond); err != nil {
			return err
		}
	}
	if len(members) > 0 {
		return fmt.Errorf("%d sink workers of group %s are running (%s), still there after the session timeout (kafka.session_timeout, %s): "+
			"stop them first — a running worker would commit over the replayed offsets",
			len(members), grp, strings.Join(members, ", "), cfg.Kafka.SessionTimeout)
	}
	committed, err := kafka.CommittedOffsets(ctx, admin, grp, topic)
	if err != nil {
		return err
	}
	end, err := kafka.EndOffsets(ctx, admin, topic)
	if err != nil {
		return err
	}
	var target map[int32]int64
	switch {
	case rt.beginning:
		target, err = kafka.StartOffsets(ctx, admin, topic)
	case rt.at != "":
		var at time.Time
		if at, err = time.Parse(time.RFC3339, rt.at); err != nil {
			return &usageError{fmt.Errorf("--to-time %q: %w (want RFC 3339, e.g. 2026-11-20T14:00:00Z)", rt.at, err)}
		}
		target, err = kafka.OffsetsAt(ctx, admin, topic, at)
	default:
		target, err = parseOffsets(rt.offsets, end)
	}
	if err != nil {
		return err
	}

	partitions := make([]int32, 0, len(target))
	for p := range target {
		partitions = append(partitions, p)
	}
	slices.Sort(partitions)
	fmt.Fprintf(out, "replay of topic %s for group %s\n  %-9s %12s %12s %12s %12s\n", topic, grp, "partition", "committed", "replay from", "end", "to re-apply")
	var total int64
	for _, p := range partitions {
		from := target[p]
		total += end[p] - from
		fmt.Fprintf(out, "  %-9d %12s %12s %12s %12s\n", p, group64(committed, p), plan.FormatCount(from), plan.FormatCount(end[p]), plan.FormatCount(end[p]-from))
	}
	fmt.Fprintf(out, "  %s events to apply again\n", plan.FormatCount(total))
	if rt.dryRun {
		fmt.Fprintln(out, "\n--dry-run: nothing changed")
		return nil
	}
	if err := kafka.CommitGroupOffsets(ctx, admin, grp, topic, target); err != nil {
		return err
	}
	log.Info("group moved", "group", grp, "events_to_apply", total)
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

// parseOffsets reads "partition:offset,…"; partitions not named are left
// out (they keep their committed offsets).
func parseOffsets(s string, end map[int32]int64) (map[int32]int64, error) {
	out := map[int32]int64{}
	for _, part := range strings.Split(s, ",") {
		p, o, ok := strings.Cut(strings.TrimSpace(part), ":")
		pn, err1 := strconv.ParseInt(p, 10, 32)
		on, err2 := strconv.ParseInt(o, 10, 64)
		if !ok || err1 != nil || err2 != nil || on < 0 {
			return nil, &usageError{fmt.Errorf("--to-offsets %q: want partition:offset,… with non-negative numbers", s)}
		}
		if _, exists := end[int32(pn)]; !exists {
			return nil, &usageError{fmt.Errorf("--to-offsets: the topic has no partition %d", pn)}
		}
		if on > end[int32(pn)] {
			return nil, &usageError{fmt.Errorf("--to-offsets: partition %d ends at offset %d, not %d", pn, end[int32(pn)], on)}
		}
		out[int32(pn)] = on
	}
	return out, nil
}

func group64(m map[int32]int64, p int32) string {
	if v, ok := m[p]; ok {
		return plan.FormatCount(v)
	}
	return "-"
}
