package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cutover/cutover/checkpoint"
)

// shardState is a shard's checkpoint: the last sequence number whose
// event (and every earlier one) Kafka acknowledged, and whether the shard
// is closed and read to its end.
type shardState struct {
	Seq  string `json:"seq,omitempty"`
	Done bool   `json:"done,omitempty"`
	// Since, for a shard without Seq, is when its position was taken as
	// "from the trim horizon": opened later than the stream's retention
	// after it, records since may be trimmed — a gap.
	Since time.Time `json:"since,omitzero"`
	// From, for a shard without Seq whose position was taken at its end
	// (LATEST) rather than at its start, is the last time the shard was
	// seen holding no record after that position: refreshed by every
	// empty read. A LATEST iterator cannot be saved, so such a shard is
	// opened again at its trim horizon, and the records created before
	// From (less StreamOptions.Settle) are skipped: a record created
	// more than Settle before an empty read of its shard that the read did
	// not return was in the shard before the position was taken: they precede the position,
	// and re-applied over the rows of a scan that read newer states they
	// would move keys backwards. Zero for a shard all of whose records
	// are to be read (a child of a shard read to its end, a gap).
	From time.Time `json:"from,omitzero"`
	// Iterator, for such a shard, is the iterator its last empty read
	// returned, at IteratorAt: it continues exactly at the position while
	// it is valid (DynamoDB Streams keeps an iterator 15 minutes), so a
	// restart soon after reads neither less nor more than it must.
	Iterator   string    `json:"iterator,omitempty"`
	IteratorAt time.Time `json:"iterator_at,omitzero"`
}

// streamPosition is the stream's checkpoint. A shard without a saved
// sequence number is read from its trim horizon; Updated says when the
// positions were last known to be readable (saved every second while the
// stream runs, and when a backfill takes them).
type streamPosition struct {
	StreamARN string                 `json:"stream_arn"`
	Shards    map[string]*shardState `json:"shards"`
	Updated   time.Time              `json:"updated"`
}

func (st *Stream) checkpointName() string {
	return fmt.Sprintf("%s/dynamodb/%s/stream", st.opts.Name, st.table.Name)
}

func (st *Stream) load(ctx context.Context) (streamPosition, bool, error) {
	var pos streamPosition
	raw, err := st.ck.Load(ctx, st.checkpointName())
	switch {
	case errors.Is(err, checkpoint.ErrNotFound):
		return pos, false, nil
	case err != nil:
		return pos, false, err
	}
	if err := json.Unmarshal(raw, &pos); err != nil {
		return pos, false, fmt.Errorf("stream checkpoint %s is corrupt: %w (delete it; the next run re-snapshots)", st.checkpointName(), err)
	}
	if pos.Shards == nil {
		pos.Shards = map[string]*shardState{}
	}
	return pos, true, nil
}

func (st *Stream) markDurable(id, seq string, done bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.pos.Shards[id]
	if s == nil {
		s = &shardState{}
		st.pos.Shards[id] = s
	}
	if seq != "" {
		s.Seq = seq
	}
	s.Done = s.Done || done
	st.dirty = true
}

func (st *Stream) saveNow(ctx context.Context) {
	st.mu.Lock()
	pos := streamPosition{StreamARN: st.pos.StreamARN, Shards: map[string]*shardState{}, Updated: time.Now().UTC()}
	for k, v := range st.pos.Shards {
		c := *v
		pos.Shards[k] = &c
	}
	st.dirty = false
	st.mu.Unlock()
	raw, err := json.Marshal(pos)
	if err == nil {
		err = st.ck.Save(ctx, st.checkpointName(), raw)
	}
	if err != nil && ctx.Err() == nil {
		st.log.Warn("saving the stream checkpoint failed", "err", err)
	}
}
