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
	"github.com/aws/smithy-go"

	"github.com/cutover/cutover/pipeline"
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
}

// Describe reads the table's key schema, stream and TTL settings.
func Describe(ctx context.Context, db *dynamodb.Client, table, endpoint string) (Table, error) {
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

// event builds the upsert event of an item.
func (t Table) event(item map[string]pipeline.Attr, version pipeline.Version, origin pipeline.Origin, src pipeline.SourceInfo) (pipeline.Event, error) {
	key, err := t.Key(item)
	if err != nil {
		return pipeline.Event{}, err
	}
	return pipeline.Event{
		Key: pipeline.EncodeItemKey(key), Op: pipeline.OpUpsert, Origin: origin, Version: version,
		Value: pipeline.Value{Type: pipeline.TypeItem, Item: item}, ExpireAt: t.expireAt(item), Source: src,
	}, nil
}

// explain turns an AWS error into one that says what to do.
func explain(endpoint string, err error) error {
	where := "DynamoDB"
	if endpoint != "" {
		where = "DynamoDB at " + endpoint
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "UnrecognizedClientException", "InvalidSignatureException", "MissingAuthenticationTokenException", "ExpiredTokenException":
			return fmt.Errorf("%s rejected the AWS credentials: %w (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the role)", where, err)
		case "AccessDeniedException":
			return fmt.Errorf("%s denied access: %w (grant dynamodb:DescribeTable, DescribeTimeToLive, Scan and dynamodb:DescribeStream, GetShardIterator, GetRecords on the table and its stream)", where, err)
		}
	}
	return fmt.Errorf("%s: %w", where, err)
}
