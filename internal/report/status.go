package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/pipeline/kafka"
	"github.com/cutover/cutover/pipeline/plan"
)

// Status is what `cutover status` shows.
type Status struct {
	Pipeline    string             `json:"pipeline"`
	Topic       string             `json:"topic"`
	Group       string             `json:"group"`
	Checkpoints []CheckpointStatus `json:"checkpoints"`
	Workers     []string           `json:"workers"`
	Partitions  []PartitionStatus  `json:"partitions"`
	Lag         int64              `json:"lag"`
	DeadLetters int64              `json:"dead_letters"`
	// SourceMaster and TargetMaster are the masters the sentinels name
	// now, when the source or the target is a Sentinel group.
	SourceMaster string `json:"source_master,omitempty"`
	TargetMaster string `json:"target_master,omitempty"`
}

// CheckpointStatus is one saved checkpoint.
type CheckpointStatus struct {
	Name    string          `json:"name"`
	Saved   time.Time       `json:"saved"`
	AgeSecs float64         `json:"age_seconds"`
	State   json.RawMessage `json:"state"`
}

// PartitionStatus is the sink group's position in one partition.
type PartitionStatus struct {
	Partition int32 `json:"partition"`
	End       int64 `json:"end_offset"`
	Committed int64 `json:"committed_offset"` // -1: nothing committed
	Lag       int64 `json:"lag"`
}

// CheckpointDir is the checkpoint store status reads: a directory of
// saved positions (checkpoint.FileStore).
type CheckpointDir interface {
	Dir() string
	List(ctx context.Context, prefix string) ([]string, error)
	Load(ctx context.Context, name string) ([]byte, error)
	Modified(name string) (time.Time, error)
}

// ReadCheckpoints sets rep's checkpoints to those of rep.Pipeline in
// store, by name, each with when it was saved and its state: the JSON it
// holds, or its size when it is not JSON.
func (rep *Status) ReadCheckpoints(ctx context.Context, store CheckpointDir) error {
	names, err := store.List(ctx, rep.Pipeline+"/")
	if err != nil {
		return fmt.Errorf("list checkpoints in %s: %w", store.Dir(), err)
	}
	slices.Sort(names)
	for _, n := range names {
		raw, err := store.Load(ctx, n)
		if err != nil {
			return err
		}
		saved, err := store.Modified(n)
		if err != nil {
			return err
		}
		if !json.Valid(raw) {
			raw, _ = json.Marshal(fmt.Sprintf("%d bytes", len(raw)))
		}
		rep.Checkpoints = append(rep.Checkpoints, CheckpointStatus{Name: n, Saved: saved.UTC(), AgeSecs: time.Since(saved).Seconds(), State: raw})
	}
	return nil
}

// SetLag sets rep's partitions, and its total lag, to the sink group's
// position.
func (rep *Status) SetLag(lag []kafka.PartitionLag) {
	rep.Partitions, rep.Lag = nil, 0
	for _, p := range lag {
		rep.Partitions = append(rep.Partitions, PartitionStatus(p))
		rep.Lag += p.Lag
	}
}

// PrintStatus prints rep as text.
func PrintStatus(w io.Writer, rep *Status) {
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
		committed := plan.FormatCount(p.Committed)
		if p.Committed < 0 {
			committed = "-"
		}
		fmt.Fprintf(w, "  %-10d %14s %14s %10s\n", p.Partition, plan.FormatCount(p.End), committed, plan.FormatCount(p.Lag))
	}
	fmt.Fprintf(w, "\nlag %s records · dead letters %s\n", plan.FormatCount(rep.Lag), plan.FormatCount(rep.DeadLetters))
}
