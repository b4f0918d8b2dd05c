package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline"
)

// sourceState is the source's pipeline-wide checkpoint.
type sourceState struct {
	// Epoch is the version epoch, as decimal text.
	Epoch string `json:"epoch"`
	// Heal, when set, is a heal still to do or under way.
	Heal *healState `json:"heal,omitempty"`
}

type healState struct {
	Reason string `json:"reason"`
	// Epoch is the epoch the heal's scan reads at, once it started.
	Epoch string `json:"epoch,omitempty"`
	// Again is set when another gap came while the heal was under way:
	// one more heal follows it.
	Again bool `json:"again,omitempty"`
}

func epochName(name, table string) string { return fmt.Sprintf("%s/dynamodb/%s/epoch", name, table) }

// loadState reads the source's checkpoint and sets the epoch from it.
func (s *Source) loadState(ctx context.Context) error {
	st, err := loadState(ctx, s.ck, s.scanOpt.Name, s.table.Name)
	if err != nil {
		return err
	}
	e, err := st.epoch()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
	s.epoch = pipeline.NewEpoch(e)
	s.scanOpt.Epoch = s.epoch
	if s.stream != nil {
		s.stream.opts.Epoch = s.epoch
	}
	if st.Heal != nil {
		s.log.Warn("a heal of a stream gap is pending from an earlier run; it runs now", "table", s.table.Name, "reason", st.Heal.Reason)
	}
	return nil
}

func (st sourceState) epoch() (uint64, error) {
	if st.Epoch == "" {
		return 0, nil
	}
	return strconv.ParseUint(st.Epoch, 10, 64)
}

// advanceEpoch starts the next epoch, saved (with whatever edit changes in
// the state) before anything is read in it.
func (s *Source) advanceEpoch(ctx context.Context, edit func(next uint64, st *sourceState)) error {
	_, err := s.epoch.Advance(func(next uint64) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		st := s.state
		st.Epoch = strconv.FormatUint(next, 10)
		if edit != nil {
			edit(next, &st)
		}
		if err := s.saveState(ctx, st); err != nil {
			return err
		}
		s.state = st
		return nil
	})
	if err != nil {
		return fmt.Errorf("start a new version epoch: %w", err)
	}
	return nil
}

func (s *Source) saveState(ctx context.Context, st sourceState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.ck.Save(ctx, epochName(s.scanOpt.Name, s.table.Name), raw)
}

func loadState(ctx context.Context, ck checkpoint.Store, name, table string) (sourceState, error) {
	var st sourceState
	key := epochName(name, table)
	raw, err := ck.Load(ctx, key)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("epoch checkpoint %s is corrupt: %w (delete it to start at epoch 0)", key, err)
	}
	return st, nil
}

// LoadEpoch returns the version epoch the pipeline name's source of table
// is at (0 before its first heal).
func LoadEpoch(ctx context.Context, ck checkpoint.Store, name, table string) (uint64, error) {
	st, err := loadState(ctx, ck, name, table)
	if err != nil {
		return 0, err
	}
	return st.epoch()
}

// MarkWritten records that the pipeline name has written to its target
// without a source run (reconcile --repair does). Without a stream
// position yet, what changes in the table from now on until replicate
// takes one is in no stream it can read: a heal is recorded, which the
// next replicate runs (a scan at a new epoch and a sweep).
func MarkWritten(ctx context.Context, ck checkpoint.Store, name, table string) error {
	if _, err := ck.Load(ctx, fmt.Sprintf("%s/dynamodb/%s/stream", name, table)); !errors.Is(err, checkpoint.ErrNotFound) {
		return err // a stream position exists (or the store failed)
	}
	st, err := loadState(ctx, ck, name, table)
	if err != nil || st.Heal != nil {
		return err
	}
	st.Heal = &healState{Reason: "reconcile --repair wrote to the target before the table's stream position was taken"}
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return ck.Save(ctx, epochName(name, table), raw)
}
