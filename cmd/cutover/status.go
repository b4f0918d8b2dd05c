package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/pipeline/kafka"
)

// statusReport is what `cutover status` shows.
type statusReport struct {
	Pipeline    string             `json:"pipeline"`
	Topic       string             `json:"topic"`
	Group       string             `json:"group"`
	Checkpoints []checkpointStatus `json:"checkpoints"`
	Workers     []string           `json:"workers"`
	Partitions  []partitionStatus  `json:"partitions"`
	Lag         int64              `json:"lag"`
	DeadLetters int64              `json:"dead_letters"`
	// SourceMaster and TargetMaster are the masters the sentinels name
	// now, when the source or the target is a Sentinel group.
	SourceMaster string `json:"source_master,omitempty"`
	TargetMaster string `json:"target_master,omitempty"`
}

type checkpointStatus struct {
	Name    string          `json:"name"`
	Saved   time.Time       `json:"saved"`
	AgeSecs float64         `json:"age_seconds"`
	State   json.RawMessage `json:"state"`
}

type partitionStatus struct {
	Partition int32 `json:"partition"`
	End       int64 `json:"end_offset"`
	Committed int64 `json:"committed_offset"` // -1: nothing committed
	Lag       int64 `json:"lag"`
}

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
			printStatus(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	config.BindFlags(cmd.Flags(), &cfg)
	cmd.Flags().StringVar(&output, "output", "text", "report format: text or json")
	return cmd
}

func pipelineStatus(ctx context.Context, cfg *config.Config) (*statusReport, error) {
	rep := &statusReport{Pipeline: cfg.Name, Topic: cfg.Kafka.Topic, Group: cfg.Kafka.Group}
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
		rep.Checkpoints = append(rep.Checkpoints, checkpointStatus{Name: n, Saved: saved.UTC(), AgeSecs: time.Since(saved).Seconds(), State: raw})
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
		ps := partitionStatus{Partition: p, End: end[p], Committed: c}
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

func printStatus(w io.Writer, rep *statusReport) {
	fmt.Fprintf(w, "pipeline %s: topic %s, consumer group %s\n", rep.Pipeline, rep.Topic, rep.Group)
	if rep.SourceMaster != "" {
		fmt.Fprintf(w, "source master (named by the sentinels): %s\n", rep.SourceMaster)
	}
	if rep.TargetMaster != "" {
		fmt.Fprintf(w, "target master (named by the sentinels): %s\n", rep.TargetMaster)
	}
	fmt.Fprintf(w, "\ncheckpoints (%d)\n", len(rep.Checkpoints))
	for _, c := range rep.Checkpoints {
		state := string(c.State)
		if len(state) > 160 {
			state = state[:157] + "..."
		}
		fmt.Fprintf(w, "  %-44s saved %s ago  %s\n", strings.TrimPrefix(c.Name, rep.Pipeline+"/"),
			time.Duration(c.AgeSecs*float64(time.Second)).Round(time.Second), state)
	}
	fmt.Fprintf(w, "\nsink workers (%d)\n", len(rep.Workers))
	for _, m := range rep.Workers {
		fmt.Fprintf(w, "  %s\n", m)
	}
	if len(rep.Partitions) == 0 {
		fmt.Fprintf(w, "\ntopic %s does not exist yet: the pipeline has not published anything\n", rep.Topic)
	} else {
		fmt.Fprintf(w, "\n  %-10s %14s %14s %10s\n", "partition", "end offset", "committed", "lag")
	}
	for _, p := range rep.Partitions {
		committed := group(p.Committed)
		if p.Committed < 0 {
			committed = "-"
		}
		fmt.Fprintf(w, "  %-10d %14s %14s %10s\n", p.Partition, group(p.End), committed, group(p.Lag))
	}
	fmt.Fprintf(w, "\nlag %s records · dead letters %s\n", group(rep.Lag), group(rep.DeadLetters))
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
