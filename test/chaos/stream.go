package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/smithy-go/logging"
)

// StreamsClient is a DynamoDB Streams client of DynamoDB Local at
// endpoint (which takes any credentials).
func StreamsClient(ctx context.Context, endpoint string) (*dynamodbstreams.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")),
		config.WithLogger(logging.Nop{}))
	if err != nil {
		return nil, fmt.Errorf("streams client: %w", err)
	}
	return dynamodbstreams.NewFromConfig(cfg, func(o *dynamodbstreams.Options) { o.BaseEndpoint = aws.String(endpoint) }), nil
}

// StreamReport is what CheckStream read from a target table's stream.
type StreamReport struct {
	// Shards and Records read; Keys is how many keys they wrote.
	Shards, Records, Keys int64
	// Values, Tombstones and Removes count the records by what they
	// left: a value, a cutover tombstone, no item (DynamoDB's TTL).
	Values, Tombstones, Removes int64
	// Regressions: a value older than one the key held before.
	// Resurrected: after a tombstone (or a removal), a value no newer
	// than the key held before the delete — the deleted value, or an
	// older one, back.
	Regressions, Resurrected int64
	// Unparsed counts values without a writer's sequence number.
	Unparsed int64
	Examples []string
}

func (r StreamReport) String() string {
	s := fmt.Sprintf("stream: %d shards, %d records (%d values, %d tombstones, %d removals) of %d keys, %d regressions, %d resurrected, %d without a sequence number",
		r.Shards, r.Records, r.Values, r.Tombstones, r.Removes, r.Keys, r.Regressions, r.Resurrected, r.Unparsed)
	if len(r.Examples) > 0 {
		s += "\n    " + strings.Join(r.Examples, "\n    ")
	}
	return s
}

// CheckStream reads every record of table's stream — created with the
// table by CreateTargetTable, before anything wrote to it — from the trim
// horizon, shard after shard in lineage order (a key's records are in
// order within a shard, and a parent shard's come before its children's),
// and checks, key by key, that the writer's sequence number never goes
// down in the order the table applied the writes: every write the sink
// made is a record, so this is exact, not a sample.
//
// It then checks that the stream was read whole: the last record of each
// key must be what the table holds now. A stream that holds no record, or
// one that does not end where the table is, is an error: it would prove
// nothing.
func CheckStream(ctx context.Context, db *dynamodb.Client, streams *dynamodbstreams.Client, table string, l TableLayout) (StreamReport, error) {
	var rep StreamReport
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return rep, fmt.Errorf("describe %s: %w", table, err)
	}
	arn := aws.ToString(desc.Table.LatestStreamArn)
	if arn == "" || desc.Table.StreamSpecification == nil || !aws.ToBool(desc.Table.StreamSpecification.StreamEnabled) {
		return rep, fmt.Errorf("table %s has no stream: create it with CreateTargetTable", table)
	}
	shards, err := streamShards(ctx, streams, arn)
	if err != nil {
		return rep, err
	}
	type keyState struct {
		max     int64 // the largest sequence number the key held
		seen    bool
		deleted bool // the last record was a tombstone or a removal
		last    []byte
		history []string // the key's last records, to explain a failure
	}
	keys := map[string]*keyState{}
	note := func(format string, args ...any) {
		if len(rep.Examples) < 20 {
			rep.Examples = append(rep.Examples, fmt.Sprintf(format, args...))
		}
	}
	for _, sh := range shards {
		rep.Shards++
		it, err := streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(arn),
			ShardId: sh.ShardId, ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			return rep, fmt.Errorf("shard iterator of %s: %w", aws.ToString(sh.ShardId), err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(1000)})
			if err != nil {
				return rep, fmt.Errorf("read shard %s of %s: %w", aws.ToString(sh.ShardId), table, err)
			}
			for _, r := range out.Records {
				rep.Records++
				key, st, deleted, err := l.recordState(r)
				if err != nil {
					return rep, err
				}
				k := keys[key]
				if k == nil {
					k = &keyState{}
					keys[key] = k
				}
				seq := aws.ToString(r.Dynamodb.SequenceNumber)
				what := fmt.Sprintf("%s %s", seq, r.EventName)
				switch {
				case deleted && r.Dynamodb.NewImage == nil:
					what += " removal"
				case deleted:
					what += " tombstone"
				default:
					what += fmt.Sprintf(" seq %d", st.Seq)
				}
				if st.ExpireAt != 0 {
					what += " expiring " + time.UnixMilli(st.ExpireAt).UTC().Format("15:04:05")
				}
				if r.Dynamodb.ApproximateCreationDateTime != nil {
					what += " at " + r.Dynamodb.ApproximateCreationDateTime.UTC().Format("15:04:05")
				}
				k.history = append(k.history, what)
				if len(k.history) > 5 {
					k.history = k.history[1:]
				}
				switch {
				case deleted && r.Dynamodb.NewImage == nil:
					rep.Removes++
					k.deleted, k.last = true, nil
				case deleted:
					rep.Tombstones++
					k.deleted, k.last = true, nil
				case !st.HasSeq:
					rep.Values++
					rep.Unparsed++
					note("record %s: %q holds a value without a sequence number", seq, key)
					k.deleted, k.last = false, st.Value
				default:
					rep.Values++
					switch {
					case k.seen && k.deleted && st.Seq <= k.max:
						rep.Resurrected++
						note("record %s: %q deleted after holding seq %d, then written with seq %d (its last records: %s)", seq, key, k.max, st.Seq,
							strings.Join(k.history, "; "))
					case k.seen && st.Seq < k.max:
						rep.Regressions++
						note("record %s: %q held seq %d, then seq %d (its last records: %s)", seq, key, k.max, st.Seq, strings.Join(k.history, "; "))
					}
					if !k.seen || st.Seq > k.max {
						k.max, k.seen = st.Seq, true
					}
					k.deleted, k.last = false, st.Value
				}
			}
			if len(out.Records) == 0 && sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber == nil {
				break // the open shard's end: everything written so far was read
			}
			iter = out.NextShardIterator
		}
	}
	rep.Keys = int64(len(keys))
	if rep.Records == 0 {
		return rep, errors.New("the target table's stream holds no record: the check proves nothing")
	}
	// The stream must end where the table is.
	now, err := ReadTable(ctx, db, table, l)
	if err != nil {
		return rep, err
	}
	missing := 0
	for key, k := range keys {
		st, ok := now[key]
		if ok == k.deleted || ok && !bytes.Equal(st.Value, k.last) {
			missing++
			note("%q: the stream's last record (deleted %v) is not what the table holds (present %v)", key, k.deleted, ok)
		}
	}
	for key := range now {
		if keys[key] == nil {
			missing++
			note("%q is in the table but in no stream record", key)
		}
	}
	if missing > 0 {
		return rep, fmt.Errorf("the stream of %s was not read whole: %d keys end elsewhere than the table holds them", table, missing)
	}
	return rep, nil
}

// streamShards lists a stream's shards, parents before their children.
func streamShards(ctx context.Context, streams *dynamodbstreams.Client, arn string) ([]streamtypes.Shard, error) {
	var all []streamtypes.Shard
	var start *string
	for {
		out, err := streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn), ExclusiveStartShardId: start})
		if err != nil {
			return nil, fmt.Errorf("describe stream %s: %w", arn, err)
		}
		all = append(all, out.StreamDescription.Shards...)
		start = out.StreamDescription.LastEvaluatedShardId
		if start == nil {
			break
		}
	}
	ids := map[string]bool{}
	for _, s := range all {
		ids[aws.ToString(s.ShardId)] = true
	}
	var ordered []streamtypes.Shard
	done := map[string]bool{}
	for len(ordered) < len(all) {
		progress := false
		for _, s := range all {
			id, parent := aws.ToString(s.ShardId), aws.ToString(s.ParentShardId)
			if done[id] || parent != "" && ids[parent] && !done[parent] {
				continue
			}
			ordered = append(ordered, s)
			done[id] = true
			progress = true
		}
		if !progress {
			return nil, fmt.Errorf("stream %s: shard lineage has a cycle", arn)
		}
	}
	return ordered, nil
}

// recordState is a stream record's new image as ReadTable reads an item.
func (l TableLayout) recordState(r streamtypes.Record) (key string, st KeyState, deleted bool, err error) {
	if r.Dynamodb == nil {
		return "", st, false, errors.New("a stream record without its data")
	}
	if r.EventName == streamtypes.OperationTypeRemove || r.Dynamodb.NewImage == nil && r.EventName != streamtypes.OperationTypeInsert &&
		r.EventName != streamtypes.OperationTypeModify {
		// A removal (DynamoDB Local names those of its TTL with a name
		// the SDK does not know): the key alone.
		item, err := fromStream(r.Dynamodb.Keys)
		if err != nil {
			return "", st, false, err
		}
		k, _ := item[l.Key].(*types.AttributeValueMemberS)
		if k == nil {
			return "", st, false, fmt.Errorf("a removal record without key %s", l.Key)
		}
		return k.Value, st, true, nil
	}
	if r.Dynamodb.NewImage == nil {
		return "", st, false, fmt.Errorf("stream record %s (%s of %v) has no new image: create the table with CreateTargetTable",
			aws.ToString(r.Dynamodb.SequenceNumber), r.EventName, r.Dynamodb.Keys)
	}
	item, err := fromStream(r.Dynamodb.NewImage)
	if err != nil {
		return "", st, false, err
	}
	return l.state(item)
}

// fromStream converts a stream image's scalar attributes to the
// dynamodb package's types.
func fromStream(img map[string]streamtypes.AttributeValue) (map[string]types.AttributeValue, error) {
	out := make(map[string]types.AttributeValue, len(img))
	for n, a := range img {
		switch v := a.(type) {
		case *streamtypes.AttributeValueMemberS:
			out[n] = &types.AttributeValueMemberS{Value: v.Value}
		case *streamtypes.AttributeValueMemberN:
			out[n] = &types.AttributeValueMemberN{Value: v.Value}
		case *streamtypes.AttributeValueMemberB:
			out[n] = &types.AttributeValueMemberB{Value: v.Value}
		case *streamtypes.AttributeValueMemberBOOL:
			out[n] = &types.AttributeValueMemberBOOL{Value: v.Value}
		case *streamtypes.AttributeValueMemberNULL:
			out[n] = &types.AttributeValueMemberNULL{Value: v.Value}
		default:
			return nil, fmt.Errorf("stream attribute %s of type %T is not one the writers write", n, a)
		}
	}
	return out, nil
}
