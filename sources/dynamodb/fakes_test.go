package dynamodb

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/pipelinetest"
)

// fakeStreams is DynamoDB Streams in memory: shards, their records, and
// errors to answer instead.
type fakeStreams struct {
	mu     sync.Mutex
	shards []streamtypes.Shard
	// records by shard; an iterator is "shard/index".
	records map[string][]streamtypes.Record
	// trimmed: the records of a shard below this index are gone.
	trimmed map[string]int
	// calls counts GetRecords calls per shard.
	calls map[string]int
	// age is added to now for the creation time of the records put.
	age time.Duration
	// delay is how long a GetRecords call takes (a slow reader).
	delay time.Duration
}

func newFakeStreams() *fakeStreams {
	return &fakeStreams{records: map[string][]streamtypes.Record{}, trimmed: map[string]int{}, calls: map[string]int{}}
}

func (f *fakeStreams) addShard(id, parent string, closed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sh := streamtypes.Shard{ShardId: aws.String(id), SequenceNumberRange: &streamtypes.SequenceNumberRange{StartingSequenceNumber: aws.String("1")}}
	if parent != "" {
		sh.ParentShardId = aws.String(parent)
	}
	if closed {
		sh.SequenceNumberRange.EndingSequenceNumber = aws.String("999999999999999999999999")
	}
	f.shards = append(f.shards, sh)
}

// put appends a record for item pk to a shard, with the next sequence
// number of that shard, which is also the item's value.
func (f *fakeStreams) put(shard, pk string, remove bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	created := time.Now().Add(f.age).Truncate(time.Minute) // rounded down, as DynamoDB Local does (DynamoDB: to the second)
	f.appendLocked(shard, streamtypes.OperationTypeInsert, pk, f.nextSeqLocked(shard), remove, created)
}

// nextSeqLocked is the sequence number of shard's next record (21 digits,
// as DynamoDB's are at least). f.mu is held.
func (f *fakeStreams) nextSeqLocked(shard string) string {
	return fmt.Sprintf("1%020d", len(f.records[shard])+1)
}

// appendLocked appends to shard the record of a change of item pk made at
// created, with the shard's next sequence number: a REMOVE if remove,
// else an op whose new image holds value in v. f.mu is held.
func (f *fakeStreams) appendLocked(shard string, op streamtypes.OperationType, pk, value string, remove bool, created time.Time) {
	key := map[string]streamtypes.AttributeValue{"pk": &streamtypes.AttributeValueMemberS{Value: pk}}
	r := streamtypes.Record{EventName: op,
		Dynamodb: &streamtypes.StreamRecord{SequenceNumber: aws.String(f.nextSeqLocked(shard)), Keys: key, ApproximateCreationDateTime: &created}}
	if remove {
		r.EventName = streamtypes.OperationTypeRemove
	} else {
		r.Dynamodb.NewImage = map[string]streamtypes.AttributeValue{"pk": key["pk"], "v": &streamtypes.AttributeValueMemberS{Value: value}}
	}
	f.records[shard] = append(f.records[shard], r)
}

func (f *fakeStreams) DescribeStream(_ context.Context, _ *dynamodbstreams.DescribeStreamInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &dynamodbstreams.DescribeStreamOutput{StreamDescription: &streamtypes.StreamDescription{Shards: append([]streamtypes.Shard(nil), f.shards...)}}, nil
}

func (f *fakeStreams) listed(id string) bool {
	for _, sh := range f.shards {
		if aws.ToString(sh.ShardId) == id {
			return true
		}
	}
	return false
}

func (f *fakeStreams) GetShardIterator(_ context.Context, in *dynamodbstreams.GetShardIteratorInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := aws.ToString(in.ShardId)
	if !f.listed(id) {
		return nil, &streamtypes.ResourceNotFoundException{Message: aws.String("no such shard")}
	}
	at := 0
	switch in.ShardIteratorType {
	case streamtypes.ShardIteratorTypeLatest:
		at = len(f.records[id])
	case streamtypes.ShardIteratorTypeTrimHorizon:
		at = f.trimmed[id]
	case streamtypes.ShardIteratorTypeAfterSequenceNumber:
		at = -1
		for i, r := range f.records[id] {
			if aws.ToString(r.Dynamodb.SequenceNumber) == aws.ToString(in.SequenceNumber) {
				at = i + 1
			}
		}
		if at < 0 || at < f.trimmed[id] {
			return nil, &streamtypes.TrimmedDataAccessException{Message: aws.String("trimmed")}
		}
	default:
		return nil, fmt.Errorf("iterator type %s", in.ShardIteratorType)
	}
	return &dynamodbstreams.GetShardIteratorOutput{ShardIterator: aws.String(id + "/" + strconv.Itoa(at))}, nil
}

func (f *fakeStreams) GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, _ ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	f.mu.Lock()
	delay := f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	it := aws.ToString(in.ShardIterator)
	slash := strings.LastIndexByte(it, '/')
	id := it[:slash]
	at, _ := strconv.Atoi(it[slash+1:])
	f.calls[id]++
	if at < f.trimmed[id] {
		return nil, &streamtypes.TrimmedDataAccessException{Message: aws.String("trimmed")}
	}
	recs := f.records[id][min(at, len(f.records[id])):]
	out := &dynamodbstreams.GetRecordsOutput{Records: recs, NextShardIterator: aws.String(id + "/" + strconv.Itoa(len(f.records[id])))}
	for _, sh := range f.shards {
		if aws.ToString(sh.ShardId) == id && sh.SequenceNumberRange.EndingSequenceNumber != nil && len(recs) == 0 {
			out.NextShardIterator = nil // closed and read to its end
		}
	}
	return out, nil
}

// fakeTable is a table in memory for Scan: every item is {pk, v}.
type fakeTable struct {
	mu    sync.Mutex
	items map[string]string
	scans int
	// arn is the table's stream now ("" when off).
	arn string
}

func (f *fakeTable) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &dynamodb.ScanOutput{}
	if aws.ToInt32(in.Segment) != 0 {
		return out, nil // everything is in segment 0
	}
	f.scans++
	for pk, v := range f.items {
		out.Items = append(out.Items, map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: pk}, "v": &ddbtypes.AttributeValueMemberS{Value: v}})
	}
	return out, nil
}

func (f *fakeTable) scanCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.scans
}

func (f *fakeTable) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pk := in.Key["pk"].(*ddbtypes.AttributeValueMemberS).Value
	v, ok := f.items[pk]
	if !ok {
		return &dynamodb.GetItemOutput{}, nil
	}
	return &dynamodb.GetItemOutput{Item: map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: pk}, "v": &ddbtypes.AttributeValueMemberS{Value: v}}}, nil
}

func (f *fakeTable) DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := &ddbtypes.TableDescription{ItemCount: aws.Int64(int64(len(f.items)))}
	if f.arn != "" {
		d.LatestStreamArn = aws.String(f.arn)
		d.StreamSpecification = &ddbtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: ddbtypes.StreamViewTypeNewAndOldImages}
	}
	return &dynamodb.DescribeTableOutput{Table: d}, nil
}

// fakePublisher keeps what it is given; everything is durable at once.
type fakePublisher = pipelinetest.Publisher

// truncates are the truncate events pub kept.
func truncates(pub *fakePublisher) []pipeline.Event { return pub.Ops(pipeline.OpTruncate) }

var fakeTableDef = Table{Name: "T", Partition: "pk", PartitionType: "S", StreamView: "NEW_AND_OLD_IMAGES", StreamARN: "arn:stream/1"}

// harness is one run of a Source over the fakes, sharing a checkpoint
// store with the runs before it.
type harness struct {
	streams *fakeStreams
	table   *fakeTable
	pub     *fakePublisher
	ck      *checkpoint.MemoryStore
	def     Table
}

func newHarness() *harness {
	return &harness{streams: newFakeStreams(), table: &fakeTable{items: map[string]string{"a": "1", "b": "1"}, arn: fakeTableDef.StreamARN},
		pub: &fakePublisher{}, ck: checkpoint.NewMemoryStore(), def: fakeTableDef}
}

func (h *harness) source(t *testing.T, mode Mode) *Source {
	t.Helper()
	return h.sourceOver(t, h.table, h.streams, mode)
}

// sourceOver is h.source reading the table through db and its stream
// through streams: the harness's fakes wrapped to fail or block.
func (h *harness) sourceOver(t *testing.T, db scanAPI, streams streamsAPI, mode Mode) *Source {
	t.Helper()
	src, err := NewSource(db, streams, h.def, ScanOptions{Name: "p", Segments: 1},
		StreamOptions{Name: "p", PollInterval: time.Millisecond, RefreshEvery: 10 * time.Millisecond, Settle: 1100 * time.Millisecond}, mode, h.pub, h.ck)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// runFor runs a source until cond holds (or a generous deadline), then
// stops it and returns its error.
func (h *harness) runFor(t *testing.T, src *Source, cond func() bool) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		select {
		case err := <-done:
			cancel()
			return fmt.Errorf("the source stopped before the condition held: %w", err)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatal("the condition did not hold within 10s")
		}
	}
	cancel()
	return <-done
}

func (h *harness) state(t *testing.T) sourceState {
	t.Helper()
	st, err := loadState(context.Background(), h.ck, "p", h.def.Name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (h *harness) streamPos(t *testing.T) streamPosition {
	t.Helper()
	raw, err := h.ck.Load(context.Background(), "p/dynamodb/T/stream")
	if err != nil {
		t.Fatal(err)
	}
	var pos streamPosition
	if err := json.Unmarshal(raw, &pos); err != nil {
		t.Fatal(err)
	}
	return pos
}
