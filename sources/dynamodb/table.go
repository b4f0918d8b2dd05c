package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/internal/dynamoerr"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/dynamoattr"
)

// Table is what the source needs to know about its table.
type Table struct {
	Name string
	// Partition and Sort are the key attributes (Sort empty without one),
	// PartitionType and SortType their types (S, N or B).
	Partition, Sort         string
	PartitionType, SortType string
	// StreamARN is the latest stream, empty when streams are off.
	StreamARN string
	// StreamView is NEW_IMAGE, NEW_AND_OLD_IMAGES, KEYS_ONLY or OLD_IMAGE.
	StreamView string
	// TTLAttribute is the attribute the table's TTL reads, if enabled: an
	// item's expiry travels as the event's expiry.
	TTLAttribute string
	// Decoder, when set, reads the items as the Redis keys cutover's
	// generic mapping stored in them (source.dynamodb.format: redis);
	// nil carries items as they are.
	Decoder Decoder
}

// Decoder reads the items of a table that cutover's generic mapping
// wrote (the target of a Redis → DynamoDB pipeline) back as the Redis
// keys and values they hold: the reverse pipeline of a roll-back copies
// them to Redis as the application wrote them, and a tombstone as a
// delete. sinks/dynamodb.Mapping implements it.
type Decoder interface {
	// ItemKey is the Redis key of an item; its key attributes suffice.
	ItemKey(item map[string]ddbtypes.AttributeValue) ([]byte, error)
	// KeyAttrs is the primary key of the item of a Redis key.
	KeyAttrs(key []byte) (map[string]ddbtypes.AttributeValue, error)
	// EventFromItem is the state of its Redis key an item holds: an
	// upsert of the value and expiry, or a delete for a tombstone. Only
	// Key, Op, Value and ExpireAt are set.
	EventFromItem(item map[string]ddbtypes.AttributeValue) (pipeline.Event, error)
}

// describeAPI is what Describe calls of DynamoDB; *dynamodb.Client
// implements it.
type describeAPI interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
}

// Describe reads the table's key schema, stream and TTL settings.
func Describe(ctx context.Context, db describeAPI, table, endpoint string) (Table, error) {
	t := Table{Name: table}
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		var nf *ddbtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return t, fmt.Errorf("source table %s does not exist (check --source-table and the region)", table)
		}
		return t, explain(endpoint, err)
	}
	d := out.Table
	for _, k := range d.KeySchema {
		switch k.KeyType {
		case ddbtypes.KeyTypeHash:
			t.Partition = aws.ToString(k.AttributeName)
		case ddbtypes.KeyTypeRange:
			t.Sort = aws.ToString(k.AttributeName)
		}
	}
	for _, a := range d.AttributeDefinitions {
		switch aws.ToString(a.AttributeName) {
		case t.Partition:
			t.PartitionType = string(a.AttributeType)
		case t.Sort:
			t.SortType = string(a.AttributeType)
		}
	}
	if s := d.StreamSpecification; s != nil && aws.ToBool(s.StreamEnabled) {
		t.StreamARN = aws.ToString(d.LatestStreamArn)
		t.StreamView = string(s.StreamViewType)
	}
	ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err == nil && ttl.TimeToLiveDescription != nil && ttl.TimeToLiveDescription.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabled {
		t.TTLAttribute = aws.ToString(ttl.TimeToLiveDescription.AttributeName)
	}
	return t, nil
}

// currentStream reads the table's stream as it is now: its ARN and view
// type, both empty when streams are off.
func currentStream(ctx context.Context, db scanAPI, table string) (arn, view string, err error) {
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return "", "", err
	}
	if s := out.Table.StreamSpecification; s != nil && aws.ToBool(s.StreamEnabled) {
		return aws.ToString(out.Table.LatestStreamArn), string(s.StreamViewType), nil
	}
	return "", "", nil
}

// CheckStream says what to enable when live capture cannot run.
func (t Table) CheckStream() error {
	switch t.StreamView {
	case "":
		return fmt.Errorf("DynamoDB Streams is off on table %s: enable it with view type NEW_AND_OLD_IMAGES (or NEW_IMAGE), "+
			"e.g. aws dynamodb update-table --table-name %s --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES", t.Name, t.Name)
	case string(ddbtypes.StreamViewTypeNewImage), string(ddbtypes.StreamViewTypeNewAndOldImages):
		return nil
	}
	return fmt.Errorf("the stream of table %s has view type %s, which carries no new image: "+
		"cutover needs NEW_AND_OLD_IMAGES (or NEW_IMAGE); a table's stream view type cannot change, so disable the stream and enable it again with one of them",
		t.Name, t.StreamView)
}

// Key returns an item's primary key, partition first.
func (t Table) Key(item map[string]pipeline.Attr) ([]pipeline.KeyAttr, error) {
	pk, ok := item[t.Partition]
	if !ok {
		return nil, fmt.Errorf("item has no partition key %s", t.Partition)
	}
	key := []pipeline.KeyAttr{{Name: t.Partition, Value: pk}}
	if t.Sort != "" {
		sk, ok := item[t.Sort]
		if !ok {
			return nil, fmt.Errorf("item has no sort key %s", t.Sort)
		}
		key = append(key, pipeline.KeyAttr{Name: t.Sort, Value: sk})
	}
	return key, nil
}

// expireAt reads the item's TTL attribute (epoch seconds) as its expiry.
func (t Table) expireAt(item map[string]pipeline.Attr) time.Time {
	if t.TTLAttribute == "" {
		return time.Time{}
	}
	a, ok := item[t.TTLAttribute]
	if !ok || a.Kind != pipeline.AttrN {
		return time.Time{}
	}
	secs, err := strconv.ParseFloat(a.N, 64)
	if err != nil || secs <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(secs), 0)
}

// add appends the event of an item to b: its upsert, or, read through
// the Decoder, the upsert or delete of the Redis key it holds. An item the
// Decoder cannot read is a reject (it goes to the dead-letter topic), not
// a failure of the whole read.
func (t Table) add(b *pipeline.Batch, item map[string]pipeline.Attr, version pipeline.Version, origin pipeline.Origin, src pipeline.SourceInfo) error {
	key, err := t.Key(item)
	if err != nil {
		return err
	}
	if t.Decoder == nil {
		b.Events = append(b.Events, pipeline.Event{
			Key: pipeline.EncodeItemKey(key), Op: pipeline.OpUpsert, Origin: origin, Version: version,
			Value: pipeline.Value{Type: pipeline.TypeItem, Item: item}, ExpireAt: t.expireAt(item), Source: src,
		})
		return nil
	}
	raw := dynamoattr.ToItem(item)
	e, err := t.Decoder.EventFromItem(raw)
	if err != nil {
		// The reject names the Redis key when the item has one: reconcile
		// then counts the key as not comparable, not as absent from the
		// source (which a repair would delete from the target).
		rk, kerr := t.Decoder.ItemKey(raw)
		if kerr != nil {
			rk = pipeline.EncodeItemKey(key)
		}
		b.Rejects = append(b.Rejects, pipeline.Reject{Key: rk, Class: pipeline.RejectInvalid,
			Err: fmt.Errorf("item %s of table %s is not in cutover's Redis mapping (source.dynamodb.format is redis): %w; "+
				"only items a Redis → DynamoDB pipeline wrote can be read back as Redis keys", pipeline.EncodeItemKey(key), t.Name, err)})
		return nil
	}
	e.Origin, e.Version, e.Source = origin, version, src
	b.Events = append(b.Events, e)
	return nil
}

// addDelete appends the delete of the item whose key attributes keys holds.
func (t Table) addDelete(b *pipeline.Batch, keys map[string]pipeline.Attr, version pipeline.Version, src pipeline.SourceInfo) error {
	key, err := t.Key(keys)
	if err != nil {
		return err
	}
	k := pipeline.EncodeItemKey(key)
	if t.Decoder != nil {
		if k, err = t.Decoder.ItemKey(dynamoattr.Key(key)); err != nil {
			b.Rejects = append(b.Rejects, pipeline.Reject{Key: pipeline.EncodeItemKey(key), Class: pipeline.RejectInvalid,
				Err: fmt.Errorf("the item removed from table %s has no Redis key (source.dynamodb.format is redis): %w", t.Name, err)})
			return nil
		}
	}
	b.Events = append(b.Events, pipeline.Event{Key: k, Op: pipeline.OpDelete, Origin: pipeline.OriginLive, Version: version, Source: src})
	return nil
}

// keyAttrs is the primary key an event key addresses; ok is false when
// the key is not one of this table's.
func (t Table) keyAttrs(key []byte) (map[string]ddbtypes.AttributeValue, bool) {
	if t.Decoder != nil {
		attrs, err := t.Decoder.KeyAttrs(key)
		return attrs, err == nil
	}
	attrs, err := pipeline.DecodeItemKey(key)
	if err != nil || attrs[0].Name != t.Partition || (len(attrs) == 2) != (t.Sort != "") {
		return nil, false
	}
	return dynamoattr.Key(attrs), true
}

// grants are the permissions the source needs on its table and its
// stream, named when DynamoDB denies access.
const grants = "dynamodb:DescribeTable, DescribeTimeToLive, Scan, BatchGetItem and dynamodb:DescribeStream, GetShardIterator, GetRecords on the table and its stream"

// explain turns an error from DynamoDB into one that says what to do.
func explain(endpoint string, err error) error { return dynamoerr.Explain(endpoint, grants, err) }
