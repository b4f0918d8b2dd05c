package dynamodb

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/cutover/cutover/sources"
)

// checkARN looks whether the table still has the stream being read. A
// stream disabled and enabled again is a new stream: what was written in
// between is in neither, a gap. errStreamChanged tells the caller to
// follow the new one; the new Stream's Start records the gap, after it has
// taken its position, so that the heal's scan starts after it. While the
// stream is off nothing is captured: the gap is recorded at once (a crash
// must not forget it) and checkARN waits for a stream to read again. A
// failed look is only logged.
func (st *Stream) checkARN(ctx context.Context) error {
	describer, ok := st.items.(scanAPI)
	if !ok {
		return nil
	}
	recorded := false
	for {
		arn, _, err := currentStream(ctx, describer, st.table.Name)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				st.log.Warn("reading the table's stream settings failed; retrying", "err", err)
			}
			return nil
		case arn == st.table.StreamARN:
			return nil
		case arn != "":
			return errStreamChanged
		case !recorded:
			st.gaps.Add(1)
			if err := st.opts.OnGap(ctx, "the table's stream was disabled: changes are not captured until it is enabled again"); err != nil {
				return err
			}
			recorded = true
		}
		if !sources.Sleep(ctx, st.opts.RefreshEvery) {
			return nil
		}
	}
}

// vanished finds saved shards that are not read to their end and that the
// stream no longer lists: they aged out (cutover was stopped for longer
// than the stream's retention) with records cutover never read — a gap.
// Each is recorded as a gap before it is marked done.
func (st *Stream) vanished(ctx context.Context, shards []streamtypes.Shard) error {
	listed := make(map[string]bool, len(shards))
	for _, sh := range shards {
		listed[aws.ToString(sh.ShardId)] = true
	}
	st.mu.Lock()
	var gone []string
	for id, s := range st.pos.Shards {
		if !s.Done && !listed[id] && !st.running[id] {
			gone = append(gone, id)
		}
	}
	st.mu.Unlock()
	for _, id := range gone {
		if err := st.lost(ctx, id, "the stream no longer lists it (it aged out before it was read to its end)", true); err != nil {
			return err
		}
	}
	return nil
}

// lost records a gap on shard id and then forgets its position: the shard
// is done (gone), or is read again from its trim horizon.
func (st *Stream) lost(ctx context.Context, id, why string, gone bool) error {
	st.gaps.Add(1)
	st.log.Error("GAP: stream records were lost before cutover read them; the changes they held will be healed by a re-scan of the table",
		"shard", id, "why", why)
	if err := st.opts.OnGap(ctx, fmt.Sprintf("shard %s: %s", id, why)); err != nil {
		return fmt.Errorf("stream shard %s: %w", id, err)
	}
	st.mu.Lock()
	st.pos.Shards[id] = &shardState{Done: gone, Since: time.Now().UTC()}
	st.dirty = true
	st.mu.Unlock()
	return nil
}

// ready picks the shards to start: not done, not running, and whose parent
// is done or gone (a parent older than the stream's retention disappears).
func (st *Stream) ready(shards []streamtypes.Shard) []streamtypes.Shard {
	st.mu.Lock()
	defer st.mu.Unlock()
	listed := map[string]bool{}
	for _, sh := range shards {
		listed[aws.ToString(sh.ShardId)] = true
		st.parents[aws.ToString(sh.ShardId)] = aws.ToString(sh.ParentShardId)
	}
	var out []streamtypes.Shard
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		if st.running[id] || (st.pos.Shards[id] != nil && st.pos.Shards[id].Done) {
			continue
		}
		if p := aws.ToString(sh.ParentShardId); p != "" && listed[p] && (st.pos.Shards[p] == nil || !st.pos.Shards[p].Done) {
			continue // a parent shard is read to its end before its children
		}
		st.running[id] = true
		if st.pos.Shards[id] == nil {
			// First seen now (a child of a shard read to its end).
			st.pos.Shards[id] = &shardState{Since: time.Now().UTC()}
			st.dirty = true
		}
		st.shards.Add(1)
		out = append(out, sh)
	}
	return out
}

// listShards lists every shard of the stream (DescribeStream is paged).
// The SDK's retryer owns retries of throttling (LimitExceededException).
func (st *Stream) listShards(ctx context.Context) ([]streamtypes.Shard, error) {
	var shards []streamtypes.Shard
	var start *string
	for {
		out, err := st.cl.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(st.table.StreamARN), ExclusiveStartShardId: start})
		if err != nil {
			return nil, fmt.Errorf("describe stream of %s: %w", st.table.Name, explain(st.opts.Endpoint, err))
		}
		shards = append(shards, out.StreamDescription.Shards...)
		start = out.StreamDescription.LastEvaluatedShardId
		if start == nil {
			return shards, nil
		}
	}
}
