package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/checkpoint"
)

// snapshotPosition is the checkpoint of a snapshot.
type snapshotPosition struct {
	Cursor uint64 `json:"cursor"`
	// RunID is the server process the cursor belongs to: a cursor is a
	// position in one process' hash table (seeded at random on start), so
	// it means nothing to a restarted or failed-over server.
	RunID string `json:"run_id"`
	// ReplID is the server's replication ID: it changes when the server
	// is promoted to master or resynchronises from another one (its data
	// replaced under the cursor), which a failover and failback without
	// a restart do. Empty in checkpoints saved before it was kept.
	ReplID  string    `json:"repl_id,omitempty"`
	Done    bool      `json:"done"`
	Scanned int64     `json:"scanned"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
}

// SnapshotStatus is what a previous run left in the checkpoint store.
type SnapshotStatus int

// The states a snapshot can be found in.
const (
	SnapshotNone       SnapshotStatus = iota // never run (or restarted)
	SnapshotInProgress                       // stopped before it finished
	SnapshotDone                             // finished
)

// Status reports what the checkpoint store holds for this snapshot.
func (s *Snapshot) Status(ctx context.Context) (SnapshotStatus, error) {
	raw, err := s.ck.Load(ctx, s.CheckpointName())
	if errors.Is(err, checkpoint.ErrNotFound) {
		return SnapshotNone, nil
	}
	if err != nil {
		return SnapshotNone, fmt.Errorf("load snapshot checkpoint: %w", err)
	}
	var pos snapshotPosition
	if err := json.Unmarshal(raw, &pos); err != nil {
		return SnapshotNone, fmt.Errorf("snapshot checkpoint %s is corrupt: %w (delete it, or run with --restart)", s.CheckpointName(), err)
	}
	if pos.Done {
		return SnapshotDone, nil
	}
	return SnapshotInProgress, nil
}

// startPosition decides where to start: a saved, unfinished cursor unless
// Restart is set; otherwise a new snapshot.
func (s *Snapshot) startPosition(ctx context.Context, runID, replID string) (snapshotPosition, error) {
	fresh := snapshotPosition{Started: time.Now().UTC(), RunID: runID, ReplID: replID}
	raw, err := s.ck.Load(ctx, s.CheckpointName())
	if errors.Is(err, checkpoint.ErrNotFound) {
		return fresh, nil
	}
	if err != nil {
		return fresh, fmt.Errorf("load snapshot checkpoint: %w", err)
	}
	var pos snapshotPosition
	if err := json.Unmarshal(raw, &pos); err != nil {
		return fresh, fmt.Errorf("snapshot checkpoint %s is corrupt: %w (delete it, or run with --restart)", s.CheckpointName(), err)
	}
	switch {
	case pos.Done:
		s.log.Info("previous snapshot completed, starting a new one", "finished", pos.Updated, "keys", pos.Scanned)
		return fresh, nil
	case s.opts.Restart:
		s.log.Info("discarding an unfinished snapshot (--restart)", "cursor", pos.Cursor, "keys_scanned", pos.Scanned)
		return fresh, nil
	case pos.Cursor == 0:
		// Saved before the first page was durable.
		return fresh, nil
	case pos.RunID != runID:
		s.log.Warn("the source Redis restarted or failed over since the snapshot stopped; its saved cursor means nothing to the new server, starting over",
			"saved_run_id", pos.RunID, "run_id", runID, "keys_scanned", pos.Scanned)
		return fresh, nil
	case pos.ReplID != "" && pos.ReplID != replID:
		s.log.Warn("the source Redis was promoted or resynchronised since the snapshot stopped (a failover); its data may have moved under the saved cursor, starting over",
			"saved_repl_id", pos.ReplID, "repl_id", replID, "keys_scanned", pos.Scanned)
		return fresh, nil
	}
	pos.ReplID = replID
	s.resumed.Store(true)
	s.log.Info("resuming snapshot", "cursor", pos.Cursor, "keys_scanned", pos.Scanned, "started", pos.Started)
	return pos, nil
}

func (s *Snapshot) markDurable(cursor uint64, scanned int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.durable.Cursor = cursor
	s.durable.Scanned = scanned
	s.dirty = true
}

// saveLoop saves the durable position every CheckpointEvery until stop.
func (s *Snapshot) saveLoop(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(s.opts.CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			s.saveDurable(ctx)
		}
	}
}

func (s *Snapshot) saveDurable(ctx context.Context) {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return
	}
	pos := s.durable
	s.dirty = false
	s.mu.Unlock()
	if pos.Cursor == 0 {
		return // the last page: Run saves the final position itself
	}
	pos.Updated = time.Now().UTC()
	if err := s.save(ctx, pos); err != nil {
		// Not fatal: a rerun resumes from an older cursor and repeats
		// some keys, which versioned apply makes harmless.
		s.log.Warn("saving the snapshot checkpoint failed", "err", err)
	}
}

func (s *Snapshot) save(ctx context.Context, pos snapshotPosition) error {
	raw, err := json.Marshal(pos)
	if err != nil {
		return err
	}
	return s.ck.Save(ctx, s.CheckpointName(), raw)
}

// serverRunID is the server process' run_id (INFO server).
func serverRunID(ctx context.Context, cl *goredis.Client) (string, error) {
	return infoField(ctx, cl, "server", "run_id")
}

// infoField is one field of an INFO section; "" when the server does not
// give it.
func infoField(ctx context.Context, cl *goredis.Client, section, field string) (string, error) {
	info, err := cl.Info(ctx, section).Result()
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, nil
		}
	}
	return "", nil
}
