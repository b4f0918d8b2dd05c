package dynamodb

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/cutover/cutover/pipeline"
)

var orders = Table{Name: "Orders", Partition: "userId", PartitionType: "S", Sort: "orderId", SortType: "N",
	StreamView: "NEW_AND_OLD_IMAGES", TTLAttribute: "expires"}

func TestStreamRecordsBecomeVersionedEvents(t *testing.T) {
	st := NewStream(nil, nil, orders, StreamOptions{Name: "p", Epoch: pipeline.NewEpoch(2)}, nil, nil)
	key := map[string]streamtypes.AttributeValue{
		"userId": &streamtypes.AttributeValueMemberS{Value: "u1"}, "orderId": &streamtypes.AttributeValueMemberN{Value: "7"}}
	image := map[string]streamtypes.AttributeValue{
		"userId": key["userId"], "orderId": key["orderId"],
		"total":   &streamtypes.AttributeValueMemberN{Value: "12345678901234567890.5"},
		"expires": &streamtypes.AttributeValueMemberN{Value: "1900000000"},
		"tags":    &streamtypes.AttributeValueMemberSS{Value: []string{"a"}},
	}
	recs := []streamtypes.Record{
		{EventName: streamtypes.OperationTypeInsert, Dynamodb: &streamtypes.StreamRecord{SequenceNumber: aws.String("100000000000000000001"), Keys: key, NewImage: image}},
		{EventName: streamtypes.OperationTypeRemove, Dynamodb: &streamtypes.StreamRecord{SequenceNumber: aws.String("100000000000000000002"), Keys: key}},
	}
	b, last, err := st.events(context.Background(), "shard-1", recs, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if last != "100000000000000000002" || len(b.Events) != 2 {
		t.Fatalf("last %s, %d events", last, len(b.Events))
	}
	up, del := b.Events[0], b.Events[1]
	wantKey := `{"userId":{"S":"u1"},"orderId":{"N":"7"}}`
	if string(up.Key) != wantKey || string(del.Key) != wantKey {
		t.Errorf("keys %s, %s; want %s", up.Key, del.Key, wantKey)
	}
	if up.Op != pipeline.OpUpsert || del.Op != pipeline.OpDelete || up.Value.Item["total"].N != "12345678901234567890.5" {
		t.Errorf("events %+v %+v", up, del)
	}
	if !up.ExpireAt.Equal(time.Unix(1_900_000_000, 0)) {
		t.Errorf("expiry %v, want the TTL attribute's", up.ExpireAt)
	}
	if up.Version.Epoch() != 2 || up.Version.Compare(del.Version) >= 0 {
		t.Errorf("versions %x, %x: want epoch 2 and the later record newer", up.Version, del.Version)
	}
	row, _ := pipeline.SequenceVersion(2, "1")
	truncate, _ := pipeline.SequenceVersion(3, "0")
	if row.Compare(up.Version) >= 0 || truncate.Compare(up.Version) <= 0 {
		t.Error("a scanned row must be older than any stream record of its epoch, and a heal's truncate newer than all of them")
	}

	recs[0].Dynamodb.NewImage = nil
	if _, _, err := st.events(context.Background(), "shard-1", recs[:1], time.Time{}); err == nil || !strings.Contains(err.Error(), "NEW_IMAGE") {
		t.Errorf("a record without a new image: %v", err)
	}
}

func TestCheckStreamSaysWhatToEnable(t *testing.T) {
	for view, want := range map[string]string{
		"":          "update-table",
		"KEYS_ONLY": "disable the stream and enable it again",
		"OLD_IMAGE": "NEW_AND_OLD_IMAGES",
	} {
		tb := orders
		tb.StreamView = view
		if err := tb.CheckStream(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("view %q: %v, want it to mention %q", view, err, want)
		}
	}
	if err := orders.CheckStream(); err != nil {
		t.Error(err)
	}
}

// A segment's LastEvaluatedKey is saved as an item key and read back to
// resume the scan: every attribute must come back with its type and value
// (a count of attributes would pass a key whose values were lost).
func TestScanPositionRoundTrips(t *testing.T) {
	raw, err := encodeAVMap(nil)
	if err != nil || raw != nil {
		t.Fatalf("empty key: %s, %v", raw, err)
	}
	m, err := decodeAVMap([]byte(`{"userId":{"S":"u1"},"orderId":{"N":"7"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ddbtypes.AttributeValue{
		"userId": &ddbtypes.AttributeValueMemberS{Value: "u1"}, "orderId": &ddbtypes.AttributeValueMemberN{Value: "7"}}
	show := func(m map[string]ddbtypes.AttributeValue) string {
		b, _ := encodeAVMap(m)
		return string(b)
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("decode: %s, want %s", show(m), show(want))
	}
	// Binary and number keys, as a table keyed on them gives.
	for _, key := range []map[string]ddbtypes.AttributeValue{
		want,
		{"pk": &ddbtypes.AttributeValueMemberB{Value: []byte{0, 1, 0xff, '"'}}, "sk": &ddbtypes.AttributeValueMemberN{Value: "-1.5E+10"}},
		{"pk": &ddbtypes.AttributeValueMemberS{Value: "quote \" and \u00e9"}},
	} {
		back, err := encodeAVMap(key)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeAVMap(back)
		if err != nil || !reflect.DeepEqual(again, key) {
			t.Fatalf("round trip: %s came back as %s, %v", back, show(again), err)
		}
	}
}
