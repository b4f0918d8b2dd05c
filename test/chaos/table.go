package chaos

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableLayout says how to read the items of a table cutover writes (or
// the ItemWriter's source table) as KeyStates, so that CompareStates can
// compare them with the source key by key.
type TableLayout struct {
	// Key is the partition key attribute (of type S); there is no sort
	// key.
	Key string
	// TTL is the expiry attribute, epoch seconds.
	TTL string
	// Generic: the items are cutover's generic mapping of Redis keys
	// (docs/type-mapping.md, "Redis → DynamoDB"): cutover_type, and the value's bytes in
	// "value"; the writer's sequence number starts the value. Otherwise
	// they are whole items (a DynamoDB source), compared attribute by
	// attribute, with the sequence number in SeqField.
	Generic bool
}

// GenericLayout is the generic mapping with its default attribute names.
var GenericLayout = TableLayout{Key: "pk", TTL: "expire_at", Generic: true}

// ItemLayout is the ItemWriter's items, in its table or copied by cutover
// to another one.
var ItemLayout = TableLayout{Key: KeyAttr, TTL: TTLAttr}

// cutover's own attributes: the version every write carries and the mark
// of a tombstone.
const (
	versionAttr = "cutover_version"
	deletedAttr = "cutover_deleted"
)

// CreateTargetTable creates the table cutover will write with layout l —
// what --create-table would make (on-demand, TTL on l.TTL) — with a
// stream of new images on, before anything writes to it: CheckStream
// then sees every write the sink makes.
func CreateTargetTable(ctx context.Context, db *dynamodb.Client, table string, l TableLayout) error {
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(l.Key), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(l.Key), KeyType: types.KeyTypeHash}},
		StreamSpecification:  &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage},
	})
	if err != nil {
		return fmt.Errorf("create target table %s: %w", table, err)
	}
	if err := waitActive(ctx, db, table); err != nil {
		return err
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(l.TTL), Enabled: aws.Bool(true)}})
	if err != nil {
		return fmt.Errorf("turn on TTL of %s: %w", table, err)
	}
	return nil
}

// ReadTable reads every item of table (a consistent Scan) as a KeyState
// by its key; tombstones are absent. Whether an expired item still counts
// is CompareStates' business (it skips those near or past their expiry).
func ReadTable(ctx context.Context, db *dynamodb.Client, table string, l TableLayout) (map[string]KeyState, error) {
	out := map[string]KeyState{}
	err := scanTable(ctx, db, table, func(item map[string]types.AttributeValue) error {
		key, st, deleted, err := l.state(item)
		if err != nil {
			return fmt.Errorf("table %s: %w", table, err)
		}
		if !deleted {
			out[key] = st
		}
		return nil
	})
	return out, err
}

// scanTable calls fn with every item of table, read by a consistent Scan.
func scanTable(ctx context.Context, db *dynamodb.Client, table string, fn func(map[string]types.AttributeValue) error) error {
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("scan %s: %w", table, err)
		}
		for _, item := range page.Items {
			if err := fn(item); err != nil {
				return err
			}
		}
	}
	return nil
}

// state is an item as a KeyState; deleted is true for a tombstone.
func (l TableLayout) state(item map[string]types.AttributeValue) (key string, st KeyState, deleted bool, err error) {
	k, ok := item[l.Key].(*types.AttributeValueMemberS)
	if !ok {
		return "", st, false, fmt.Errorf("an item without key attribute %s of type S: %v", l.Key, item)
	}
	key = k.Value
	if d, ok := item[deletedAttr].(*types.AttributeValueMemberBOOL); ok && d.Value {
		return key, st, true, nil
	}
	if e, ok := item[l.TTL].(*types.AttributeValueMemberN); ok {
		secs, err := strconv.ParseInt(e.Value, 10, 64)
		if err != nil {
			return key, st, false, fmt.Errorf("item %q: %s %q is not epoch seconds", key, l.TTL, e.Value)
		}
		st.ExpireAt = secs * 1000
	}
	if l.Generic {
		typ, _ := item["cutover_type"].(*types.AttributeValueMemberS)
		v, _ := item["value"].(*types.AttributeValueMemberB)
		if typ == nil || v == nil {
			return key, st, false, fmt.Errorf("item %q is not a generic mapping of a Redis string: %v", key, item)
		}
		st.Type, st.Value = typ.Value, v.Value
		st.Seq, st.HasSeq = Seq(v.Value)
		return key, st, false, nil
	}
	st.Type = "item"
	st.Value, err = canonicalItem(item)
	if err != nil {
		return key, st, false, fmt.Errorf("item %q: %w", key, err)
	}
	if n, ok := item[SeqField].(*types.AttributeValueMemberN); ok {
		if s, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			st.Seq, st.HasSeq = s, true
		}
	}
	return key, st, false, nil
}

// canonicalItem is an item's attributes but cutover's version, sorted by
// name, each length-prefixed with its type: equal items give equal bytes.
func canonicalItem(item map[string]types.AttributeValue) ([]byte, error) {
	names := make([]string, 0, len(item))
	for n := range item {
		if n != versionAttr {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var b []byte
	for _, n := range names {
		var typ string
		var v []byte
		switch a := item[n].(type) {
		case *types.AttributeValueMemberS:
			typ, v = "S", []byte(a.Value)
		case *types.AttributeValueMemberN:
			typ, v = "N", []byte(a.Value)
		case *types.AttributeValueMemberB:
			typ, v = "B", a.Value
		case *types.AttributeValueMemberBOOL:
			typ, v = "BOOL", strconv.AppendBool(nil, a.Value)
		case *types.AttributeValueMemberNULL:
			typ = "NULL"
		default:
			return nil, fmt.Errorf("attribute %s of type %T is not one the item writer writes", n, a)
		}
		b = strconv.AppendInt(b, int64(len(n)), 10)
		b = append(b, ':')
		b = append(b, n...)
		b = append(b, typ...)
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return b, nil
}
