package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/cutover/cutover/internal/retry"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/dynamoattr"
	"github.com/cutover/cutover/sources"
)

// readShard reads one shard to its end (or until ctx ends).
func (st *Stream) readShard(ctx context.Context, sh streamtypes.Shard) error {
	id := aws.ToString(sh.ShardId)
	log := st.log.With("shard", id)
	st.mu.Lock()
	saved := st.pos.Shards[id]
	latest := st.latest[id]
	delete(st.latest, id)
	st.mu.Unlock()
	if latest == nil && saved != nil && saved.Seq == "" && !saved.Done && !saved.Since.IsZero() &&
		time.Since(saved.Since) > st.opts.Retention-time.Hour {
		// From the trim horizon, taken so long ago that records after it
		// may be trimmed already (the shard could not be read for a day,
		// or cutover was stopped).
		if err := st.lost(ctx, id, fmt.Sprintf("its position was taken %s ago, longer than the stream keeps records",
			time.Since(saved.Since).Round(time.Minute)), false); err != nil {
			return err
		}
	}
	// The pace of the retries of the shard's failed calls: a stream is
	// read until stopped, so it never gives up.
	failures := retry.New(0, retry.Initial(500*time.Millisecond), retry.Max(30*time.Second))
	var it *string
	var skipBefore time.Time // records created before it precede the position
	// An empty read proves nothing about the records after the position
	// unless the chain started at it (LATEST): from the trim horizon,
	// GetRecords may answer empty pages before it reaches any record.
	atPosition := latest != nil
	for {
		var err error
		switch {
		case saved != nil && saved.Seq != "":
			it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeAfterSequenceNumber, saved.Seq)
		case latest != nil:
			it = latest
		case saved != nil && saved.Iterator != "" && time.Since(saved.IteratorAt) < iteratorLife:
			it, atPosition = aws.String(saved.Iterator), true
		default:
			if saved != nil && !saved.From.IsZero() {
				skipBefore = saved.From.Add(-st.opts.Settle)
			}
			it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeTrimHorizon, "")
		}
		if err == nil {
			break
		}
		if isGap(err) {
			return st.shardErr(ctx, id, err) // recorded; the shard starts again at its trim horizon, or is done
		}
		if e := st.shardErr(ctx, id, err); e != nil || ctx.Err() != nil {
			return e
		}
		if !sources.Sleep(ctx, failures.NextBackOff()) {
			return nil
		}
	}
	lastSeq := ""
	if saved != nil {
		lastSeq = saved.Seq
	}
	idle := st.opts.PollInterval
	failures.Reset()
	empties := 0 // empty reads in a row
	for it != nil {
		asked := time.Now().UTC()
		out, err := st.cl.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(1000)})
		var expired *streamtypes.ExpiredIteratorException
		var trimmed *streamtypes.TrimmedDataAccessException
		switch {
		case errors.As(err, &expired):
			// Iterators last 15 minutes: take a new one where we are.
			if lastSeq != "" {
				it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeAfterSequenceNumber, lastSeq)
			} else {
				skipBefore, atPosition = st.from(id), false
				it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeTrimHorizon, "")
			}
			if err != nil {
				return st.shardErr(ctx, id, err)
			}
			continue
		case errors.As(err, &trimmed):
			// Records past the iterator were trimmed before we read them:
			// a gap, then on from what the shard still holds.
			if err := st.lost(ctx, id, "its records were trimmed before cutover read them", false); err != nil {
				return err
			}
			lastSeq, skipBefore, atPosition = "", time.Time{}, false
			if it, err = st.iterator(ctx, id, streamtypes.ShardIteratorTypeTrimHorizon, ""); err != nil {
				return st.shardErr(ctx, id, err)
			}
			continue
		case err != nil:
			if e := st.shardErr(ctx, id, err); e != nil || ctx.Err() != nil {
				return e
			}
			if !sources.Sleep(ctx, failures.NextBackOff()) {
				return nil
			}
			continue
		}
		failures.Reset()
		if len(out.Records) > 0 {
			idle, empties = st.opts.PollInterval, 0
			b, last, err := st.events(ctx, id, out.Records, skipBefore)
			if err != nil {
				return err
			}
			lastSeq = last
			seq := last
			if err := st.pub.Publish(ctx, b, func() { st.markDurable(id, seq, false) }); err != nil {
				return fmt.Errorf("stream shard %s: %w", id, err)
			}
			// A shard's records are in the order of their writes: every
			// record written before this one's creation is read too.
			if c := out.Records[len(out.Records)-1].Dynamodb; c != nil && c.ApproximateCreationDateTime != nil {
				st.caughtUpAt(id, *c.ApproximateCreationDateTime)
			}
		}
		it = out.NextShardIterator
		if it == nil {
			break // the shard is closed and read to its end
		}
		if len(out.Records) == 0 {
			if lastSeq == "" && atPosition {
				st.readEmpty(id, asked, out.NextShardIterator)
			}
			// From the trim horizon, GetRecords may answer empty pages
			// before it reaches the shard's records: an empty read says
			// the shard is read up to now only once the chain has met
			// records or stands at its position, or after several empty
			// pages in a row.
			if empties++; lastSeq != "" || atPosition || empties >= 3 {
				st.caughtUpAt(id, asked)
			}
			if !sources.Sleep(ctx, idle) {
				return nil
			}
			idle = min(2*idle, 4*st.opts.PollInterval)
		}
	}
	// Closed: once everything published is durable, its children may start.
	if err := st.pub.Publish(ctx, pipeline.Batch{}, func() { st.markDurable(id, lastSeq, true) }); err != nil {
		return err
	}
	st.done.Add(1)
	log.Info("shard read to its end")
	return nil
}

// from is the time before which (less Settle) shard id's records
// precede its position; zero when every record is to be read.
func (st *Stream) from(id string) time.Time {
	st.mu.Lock()
	defer st.mu.Unlock()
	if sh := st.pos.Shards[id]; sh != nil && sh.Seq == "" && !sh.From.IsZero() {
		return sh.From.Add(-st.opts.Settle)
	}
	return time.Time{}
}

// readEmpty records that shard id, of which no record was read yet, held
// none after its position when asked at asked: its From moves there.
func (st *Stream) readEmpty(id string, asked time.Time, next *string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if sh := st.pos.Shards[id]; sh != nil && sh.Seq == "" && !sh.From.IsZero() && asked.After(sh.From) {
		sh.From = asked
		sh.Iterator, sh.IteratorAt = aws.ToString(next), asked
		st.dirty = true
	}
}

// events turns stream records into events. Records created before
// skipBefore precede the shard's position (see shardState.From) and are
// skipped; the last sequence number counts them all.
func (st *Stream) events(ctx context.Context, shard string, recs []streamtypes.Record, skipBefore time.Time) (pipeline.Batch, string, error) {
	var b pipeline.Batch
	last := ""
	for _, r := range recs {
		d := r.Dynamodb
		if d == nil {
			continue
		}
		seq := aws.ToString(d.SequenceNumber)
		last = seq
		if t := d.ApproximateCreationDateTime; t != nil && t.Add(creationRounding).Before(skipBefore) {
			st.skipped.Add(1)
			continue
		}
		version, err := pipeline.SequenceVersion(st.opts.Epoch.Load(), seq)
		if err != nil {
			return b, "", fmt.Errorf("shard %s: %w", shard, err)
		}
		src := pipeline.SourceInfo{Connector: "dynamodb", Name: st.opts.Name, Table: st.table.Name, Node: shard, Position: []byte(seq)}
		if t := d.ApproximateCreationDateTime; t != nil {
			src.Time = *t
			st.ageNanos.Store(int64(time.Since(*t)))
		}
		st.records.Add(1)
		if r.EventName == streamtypes.OperationTypeRemove {
			if err := st.table.addDelete(&b, dynamoattr.FromStreamItem(d.Keys), version, src); err != nil {
				return b, "", fmt.Errorf("shard %s record %s: %w", shard, seq, err)
			}
			st.deletes.Add(1)
			continue
		}
		image, ok := dynamoattr.FromStreamImage(d.NewImage)
		if !ok {
			// No new image, or one with a value no attribute type names
			// (DynamoDB Local writes an empty map so): the record says the
			// item changed but not what it holds now. Read it.
			if image, err = st.reread(ctx, d.Keys); err != nil {
				return b, "", fmt.Errorf("shard %s record %s (%s) has no usable new image, and reading the item failed: %w", shard, seq, r.EventName, err)
			}
			st.rereads.Add(1)
			if image == nil {
				if err := st.table.addDelete(&b, dynamoattr.FromStreamItem(d.Keys), version, src); err != nil {
					return b, "", fmt.Errorf("shard %s record %s: %w", shard, seq, err)
				}
				continue
			}
		}
		if err := st.table.add(&b, image, version, pipeline.OriginLive, src); err != nil {
			return b, "", fmt.Errorf("shard %s record %s: %w", shard, seq, err)
		}
	}
	return b, last, nil
}

// reread reads an item whose stream record carries no usable image, with
// a strongly consistent read: its state now, at least as new as the
// record's (a change after it is a later record, with a greater sequence
// number). nil means the item is gone.
func (st *Stream) reread(ctx context.Context, keys map[string]streamtypes.AttributeValue) (map[string]pipeline.Attr, error) {
	if st.items == nil {
		return nil, fmt.Errorf("the stream's view type must be NEW_IMAGE or NEW_AND_OLD_IMAGES")
	}
	key, err := st.table.Key(dynamoattr.FromStreamItem(keys))
	if err != nil {
		return nil, err
	}
	out, err := st.items.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table.Name), Key: dynamoattr.Key(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, explain(st.opts.Endpoint, err)
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return dynamoattr.FromItem(out.Item), nil
}

// isGap reports whether err says records were lost to the stream.
func isGap(err error) bool {
	var trimmed *streamtypes.TrimmedDataAccessException
	var missing *streamtypes.ResourceNotFoundException
	return errors.As(err, &trimmed) || errors.As(err, &missing)
}

// shardErr handles a failed call on a shard: records trimmed before they
// were read, or a shard that is gone, is a gap (recorded, then the shard
// restarts at its trim horizon, or is done); other errors are logged and
// nil is returned so that the caller waits and tries again. An error is
// returned when the gap cannot be recorded, or ctx ended (nil then).
func (st *Stream) shardErr(ctx context.Context, id string, err error) error {
	var trimmed *streamtypes.TrimmedDataAccessException
	var missing *streamtypes.ResourceNotFoundException
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.As(err, &trimmed):
		return st.lost(ctx, id, "its records were trimmed before cutover read them", false)
	case errors.As(err, &missing):
		return st.lost(ctx, id, "the stream no longer has it (it aged out before it was read to its end)", true)
	}
	st.log.Warn("stream call failed, retrying", "shard", id, "err", err)
	return nil
}

func (st *Stream) iterator(ctx context.Context, shard string, typ streamtypes.ShardIteratorType, seq string) (*string, error) {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(st.table.StreamARN), ShardId: aws.String(shard), ShardIteratorType: typ}
	if seq != "" {
		in.SequenceNumber = aws.String(seq)
	}
	out, err := st.cl.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("shard iterator for %s: %w", shard, err)
	}
	return out.ShardIterator, nil
}
