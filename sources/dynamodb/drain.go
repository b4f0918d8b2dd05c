package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// errNotDrainable is a backfill: it answers no drain.
var errNotDrainable = errors.New("a backfill does not answer drain requests: drain a running `cutover replicate`")

// Drained returns once every change made to the table before the call is
// handed to the publisher (kafka.DrainSource). A stream has no "you have
// read everything up to now" answer, so it relies on what live capture
// already relies on (StreamOptions.Settle): a write is readable in the
// stream within Settle, clock differences and rounding included. Called
// at t, it waits until
//
//   - the snapshot, and a heal pending from an earlier run, are done;
//   - a listing of the stream's shards began after t + Settle, and every
//     shard it listed is read to its end, or was read by a GetRecords
//     that began after t + Settle and found no more records, or has
//     handed over a record created after t + Settle (a shard's records
//     are in the order of their writes; a busy shard is never read
//     empty). A shard whose parent was still being read counts only once
//     it is read itself, so the children of a shard that closes meanwhile
//     are waited for;
//   - every gap recorded by then is healed (a re-scan of the table).
//
// Records are handed to the publisher before the next GetRecords of
// their shard, so everything read by then is handed over.
func (s *Source) Drained(ctx context.Context) error {
	if s.mode.SnapshotOnly {
		return errNotDrainable
	}
	t := time.Now().UTC()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.live:
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	wait := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			return nil
		}
	}
	for {
		st := s.streamNow()
		after := t.Add(st.opts.Settle)
		if st.caughtUp(after) {
			break
		}
		st.relistAfter(after)
		if err := wait(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	target := s.gapsRecorded
	s.mu.Unlock()
	for {
		s.mu.Lock()
		healed := s.gapsHealed >= target
		s.mu.Unlock()
		if healed {
			return nil
		}
		if err := wait(); err != nil {
			return fmt.Errorf("waiting for the heal of a stream gap: %w", err)
		}
	}
}

// errBacklogStopped is awaitBacklog's answer when the stream stopped
// before it handed its backlog over: the caller reads the stream's error.
var errBacklogStopped = errors.New("the stream stopped before handing over its backlog")

// awaitBacklog returns once every record of a write made before the call
// is handed to the publisher — by the test Drained applies to the stream.
// A scan that follows it can start a new epoch: the records of the writes
// before it carry the old one and lose to its rows, which read newer
// states. Without it, a stream that resumed saved positions read its
// backlog while the scan ran, stamped it with the new epoch, and put
// states older than the rows' over them (see Source.Run).
//
// It returns errBacklogStopped once stopped is closed (the stream stopped
// reading; its caller reads why), and ctx's error when ctx ends. A shard
// that cannot be read (refused, say) never catches up: past the settle
// time and 30 s more, a bounded wait (a backfill's: a command that must
// end) warns and returns nil, so the scan runs and a replicate may show
// an older state of an item for a moment; an unbounded one (replicate's:
// it follows the stream forever, and a regression is worse than a wait)
// warns every minute, naming the shards it waits for, and goes on waiting.
func (st *Stream) awaitBacklog(ctx context.Context, stopped <-chan struct{}, bounded bool) error {
	after := time.Now().UTC().Add(st.opts.Settle)
	st.log.Info("the scan waits until the stream has handed over every change made before it (at least the settle time)",
		"table", st.table.Name, "settle", st.opts.Settle)
	tick := time.NewTicker(min(st.opts.PollInterval, 250*time.Millisecond))
	defer tick.Stop()
	late := time.NewTimer(st.opts.Settle + 30*time.Second)
	defer late.Stop()
	for !st.caughtUp(after) {
		st.relistAfter(after)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stopped:
			return errBacklogStopped
		case <-late.C:
			behind := st.behind(after)
			if bounded {
				st.log.Warn("some stream shards could not be read to their end: the scan starts anyway, and a replicate may show an older state of an item changed before it for a moment",
					"table", st.table.Name, "shards", behind)
				return nil
			}
			st.log.Warn("the scan still waits for stream shards that cannot be read to their end: see the stream errors above",
				"table", st.table.Name, "shards", behind)
			late.Reset(time.Minute)
		case <-tick.C:
		}
	}
	return nil
}

// behind returns the shards not yet read up to after.
func (st *Stream) behind(after time.Time) []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var out []string
	for _, id := range st.listed {
		if sh := st.pos.Shards[id]; (sh == nil || !sh.Done) && st.readTo[id].Before(after) {
			out = append(out, id)
		}
	}
	return out
}

// sawListing records a listing of the shards that began at asked.
func (st *Stream) sawListing(asked time.Time, shards []streamtypes.Shard) {
	ids := make([]string, 0, len(shards))
	for _, sh := range shards {
		ids = append(ids, aws.ToString(sh.ShardId))
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.listedAt, st.listed = asked, ids
}

// caughtUpAt records that shard id is read up to at: a read that began
// at at found no more records, or the last record handed over was created
// at at.
func (st *Stream) caughtUpAt(id string, at time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if at.After(st.readTo[id]) {
		st.readTo[id] = at
	}
}

// caughtUp reports whether a listing of the shards began after after,
// and every shard it listed is read to its end or up to after.
func (st *Stream) caughtUp(after time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.listedAt.Before(after) {
		return false
	}
	for _, id := range st.listed {
		if sh := st.pos.Shards[id]; sh != nil && sh.Done {
			continue
		}
		if st.readTo[id].Before(after) {
			return false
		}
	}
	return true
}

// relistAfter asks Run to list the shards now, if the last listing began
// before after and after has passed.
func (st *Stream) relistAfter(after time.Time) {
	st.mu.Lock()
	stale := st.listedAt.Before(after)
	st.mu.Unlock()
	if !stale || time.Now().Before(after) {
		return
	}
	select {
	case st.relist <- struct{}{}:
	default:
	}
}
