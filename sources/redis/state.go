package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/checkpoint"
)

// State is a Redis source's pipeline-wide checkpoint: the version epoch
// its reads are stamped with. Every run of the source starts a new epoch,
// saved here before anything is read in it (see Source.Run).
type State struct {
	Epoch uint64 `json:"epoch"`
	// MaxMicros is kept for checkpoints written by older versions of
	// cutover, which compared it with the server's clock at start; a new
	// epoch per run makes that comparison unnecessary.
	MaxMicros uint64    `json:"max_micros,omitempty"`
	Updated   time.Time `json:"updated"`
}

// StateName is where the source of pipeline name keeps its State.
func StateName(name string) string { return name + "/redis/live" }

// LoadState reads the State of pipeline name; found is false when no
// source of that pipeline ran before.
func LoadState(ctx context.Context, ck checkpoint.Store, name string) (st State, found bool, err error) {
	raw, err := ck.Load(ctx, StateName(name))
	if errors.Is(err, checkpoint.ErrNotFound) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("load source checkpoint %s: %w", StateName(name), err)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, false, fmt.Errorf("source checkpoint %s is corrupt: %w (delete it; the next run heals)", StateName(name), err)
	}
	return st, true, nil
}

// saveState records st as the State of pipeline name.
func saveState(ctx context.Context, ck checkpoint.Store, name string, st State) error {
	st.Updated = time.Now().UTC()
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := ck.Save(ctx, StateName(name), raw); err != nil {
		return fmt.Errorf("save source checkpoint %s: %w", StateName(name), err)
	}
	return nil
}

// MarkWritten records that the pipeline name has written to its target
// without a source run (reconcile --repair does): the next run of the
// source then takes the pipeline for one that ran before, and sweeps from
// the target what the source no longer has — keys a repair wrote and the
// source deleted since would otherwise stay for good.
func MarkWritten(ctx context.Context, ck checkpoint.Store, name string) error {
	if _, found, err := LoadState(ctx, ck, name); err != nil || found {
		return err
	}
	return saveState(ctx, ck, name, State{})
}
