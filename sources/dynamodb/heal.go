package dynamodb

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/cutover/cutover/pipeline"
)

// recordGap writes down that a heal is needed, before the stream forgets
// the position that can no longer be read, and wakes the heal.
func (s *Source) recordGap(ctx context.Context, reason string) error {
	s.mu.Lock()
	st := s.state
	if st.Heal == nil {
		st.Heal = &healState{Reason: reason}
	} else {
		// A heal already pending, or running: one more must follow it
		// unless it has not started reading yet.
		h := *st.Heal
		h.Again = h.Epoch != ""
		h.Reason = reason
		st.Heal = &h
	}
	err := s.saveState(ctx, st)
	if err == nil {
		s.state = st
		s.gapsRecorded++
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("record a stream gap (%s): %w", reason, err)
	}
	s.log.Error("GAP: changes of the table may be missing from the stream; a heal will re-scan the table and sweep what was deleted meanwhile",
		"table", s.table.Name, "reason", reason)
	select {
	case s.gaps <- reason:
	default:
	}
	return nil
}

// heal answers a gap: a new epoch, a full scan at it, then a truncate of
// everything older — the items deleted while changes were not seen. A
// heal interrupted by a restart resumes its scan in its own epoch.
func (s *Source) heal(ctx context.Context) error {
	s.mu.Lock()
	h := s.state.Heal
	// Every gap recorded by now is covered by this heal's scan, which
	// starts after it; or, when no heal is pending, was covered by an
	// earlier one (a gap recorded during a heal's scan keeps a heal
	// pending: healState.Again).
	covers := s.gapsRecorded
	if h == nil {
		s.gapsHealed = max(s.gapsHealed, covers)
	}
	s.mu.Unlock()
	if h == nil {
		return nil
	}
	resume := h.Epoch != "" && h.Epoch == strconv.FormatUint(s.epoch.Load(), 10)
	if !resume {
		if err := s.advanceEpoch(ctx, func(next uint64, st *sourceState) {
			st.Heal = &healState{Reason: h.Reason, Epoch: strconv.FormatUint(next, 10)}
		}); err != nil {
			return fmt.Errorf("heal: %w", err)
		}
	}
	e := s.epoch.Load()
	s.log.Warn("healing a stream gap: scanning the whole table at a new version epoch", "table", s.table.Name, "epoch", e,
		"reason", h.Reason, "resumed", resume)
	opts := s.scanOpt
	opts.Restart = !resume
	scan := NewScan(s.db, s.table, opts, s.pub, s.ck)
	s.scan.Store(scan)
	if err := scan.Run(ctx); err != nil {
		return fmt.Errorf("heal: %w (run the same command again: the heal resumes)", err)
	}
	since, _ := pipeline.SequenceVersion(e, "0")
	t := pipeline.Event{Op: pipeline.OpTruncate, Origin: pipeline.OriginLive, Version: since, Scope: &pipeline.Scope{},
		Source: pipeline.SourceInfo{Connector: "dynamodb", Name: s.scanOpt.Name, Table: s.table.Name, Time: time.Now()}}
	if err := s.pub.Broadcast(ctx, t, nil); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	if err := s.pub.Flush(ctx); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	s.mu.Lock()
	st := s.state
	again := st.Heal != nil && st.Heal.Again
	if again {
		st.Heal = &healState{Reason: st.Heal.Reason} // another gap came during this heal
	} else {
		st.Heal = nil
	}
	err := s.saveState(ctx, st)
	if err == nil {
		s.state = st
		s.gapsHealed = max(s.gapsHealed, covers)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("heal done, but recording it failed: %w (the next run heals again)", err)
	}
	s.heals.Add(1)
	s.log.Info("heal done: items deleted during the gap will be swept from the target", "table", s.table.Name, "items", scan.Progress().Items)
	if again {
		select {
		case s.gaps <- st.Heal.Reason:
		default:
		}
	}
	return nil
}
