package dynamodb

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/dynamoattr"
	ddbsink "github.com/cutover/cutover/sinks/dynamodb"
)

// redisTable is a table a Redis → DynamoDB pipeline wrote, read back as
// Redis keys (source.dynamodb.format: redis).
var redisTable = Table{Name: "Users", Partition: "pk", PartitionType: "S", StreamView: "NEW_AND_OLD_IMAGES", TTLAttribute: "expire_at",
	Decoder: ddbsink.GenericMapping(ddbsink.Options{KeyAttribute: "pk", KeyType: "S"})}

// Every Redis type the forward pipeline writes comes back as it was, with
// its expiry; a tombstone comes back as a delete, never as a key.
func TestDecoderReadsTheGenericMappingBack(t *testing.T) {
	m := ddbsink.GenericMapping(ddbsink.Options{KeyAttribute: "pk", KeyType: "S"})
	at := time.Unix(1_900_000_000, 0)
	v := pipeline.Version{1, 2, 3}
	written := []pipeline.Event{
		{Key: []byte("s"), Op: pipeline.OpUpsert, Version: v, Value: pipeline.Value{Type: pipeline.TypeString, String: []byte("v")}, ExpireAt: at},
		{Key: []byte("h"), Op: pipeline.OpUpsert, Version: v, Value: pipeline.Value{Type: pipeline.TypeHash,
			Hash: []pipeline.Field{{Name: []byte("f"), Value: []byte("1")}, {Name: []byte(""), Value: []byte("empty name")}}}},
		{Key: []byte("l"), Op: pipeline.OpUpsert, Version: v, Value: pipeline.Value{Type: pipeline.TypeList, List: [][]byte{[]byte("a"), []byte("a")}}},
		{Key: []byte("z"), Op: pipeline.OpUpsert, Version: v, Value: pipeline.Value{Type: pipeline.TypeZSet,
			ZSet: []pipeline.ScoredMember{{Member: []byte("m"), Score: 1.5}}}},
		{Key: []byte("gone"), Op: pipeline.OpDelete, Version: v},
	}
	var b pipeline.Batch
	for i := range written {
		item, err := m.Item(&written[i], time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := redisTable.add(&b, dynamoattr.FromItem(item), pipeline.Version{9}, pipeline.OriginSnapshot, pipeline.SourceInfo{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.Events) != len(written) || len(b.Rejects) != 0 {
		t.Fatalf("%d events, %d rejects, want %d events", len(b.Events), len(b.Rejects), len(written))
	}
	for i, want := range written {
		got := b.Events[i]
		if string(got.Key) != string(want.Key) || got.Op != want.Op || !got.ExpireAt.Equal(want.ExpireAt) {
			t.Errorf("key %s: read back as %s %s expiring %v, want %s %s expiring %v", want.Key, got.Op, got.Key, got.ExpireAt, want.Op, want.Key, want.ExpireAt)
		}
		if d := pipeline.Diff(&want.Value, &got.Value); want.Op == pipeline.OpUpsert && d != "" {
			t.Errorf("key %s: %s", want.Key, d)
		}
		if got.Version.Compare(pipeline.Version{9}) != 0 || got.Origin != pipeline.OriginSnapshot {
			t.Errorf("key %s: version %x origin %v, want the table's own", want.Key, got.Version, got.Origin)
		}
	}
}

// The stream: a removed item is the delete of its Redis key; an item not
// in the generic mapping is a reject that says so, not a stopped shard.
func TestDecoderOnTheStream(t *testing.T) {
	st := NewStream(nil, nil, redisTable, StreamOptions{Name: "p", Epoch: pipeline.NewEpoch(2)}, nil, nil)
	key := map[string]streamtypes.AttributeValue{"pk": &streamtypes.AttributeValueMemberS{Value: "user:1"}}
	recs := []streamtypes.Record{
		{EventName: streamtypes.OperationTypeInsert, Dynamodb: &streamtypes.StreamRecord{SequenceNumber: aws.String("100000000000000000001"), Keys: key,
			NewImage: map[string]streamtypes.AttributeValue{"pk": key["pk"], "name": &streamtypes.AttributeValueMemberS{Value: "not cutover's"}}}},
		{EventName: streamtypes.OperationTypeModify, Dynamodb: &streamtypes.StreamRecord{SequenceNumber: aws.String("100000000000000000002"), Keys: key,
			NewImage: map[string]streamtypes.AttributeValue{"pk": key["pk"], "cutover_deleted": &streamtypes.AttributeValueMemberBOOL{Value: true}}}},
		{EventName: streamtypes.OperationTypeRemove, Dynamodb: &streamtypes.StreamRecord{SequenceNumber: aws.String("100000000000000000003"), Keys: key}},
	}
	b, last, err := st.events(context.Background(), "shard-1", recs, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if last != "100000000000000000003" || len(b.Events) != 2 || len(b.Rejects) != 1 {
		t.Fatalf("last %s, %d events, %d rejects; want 2 deletes and 1 reject", last, len(b.Events), len(b.Rejects))
	}
	for _, e := range b.Events {
		if string(e.Key) != "user:1" || e.Op != pipeline.OpDelete {
			t.Errorf("event %s %s, want the delete of user:1", e.Op, e.Key)
		}
	}
	if rej := b.Rejects[0]; string(rej.Key) != "user:1" {
		t.Errorf("the reject's key is %s, want the Redis key user:1 (reconcile matches rejects by key)", rej.Key)
	}
	if rej := b.Rejects[0]; rej.Class != pipeline.RejectInvalid || !strings.Contains(rej.Err.Error(), "format items") && !strings.Contains(rej.Err.Error(), "cutover's Redis mapping") {
		t.Errorf("reject %s: %v", rej.Class, rej.Err)
	}
}
