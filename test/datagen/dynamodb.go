package datagen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"
)

// Orders is a DynamoDB dataset with a composite key: userId (S) and
// orderId (N). Each item holds every attribute type: S (with non-ASCII
// and empty strings), N (fractions, negatives, 38 significant digits),
// B (with NUL and 0xff bytes), BOOL, NULL, SS, NS, BS, and L and M nested
// in each other; a tenth of them expire (attribute "expires", epoch
// seconds, the table's TTL attribute).
//
// Every seventh item (i%7 == 0) also holds an empty map and an empty list,
// and OrdersWriter leaves those items alone: DynamoDB Local 3.x drops the
// type of empty collections from stream images
// (awslabs/amazon-dynamodb-local-samples#37), which the SDK then decodes
// as a neighbouring attribute's value. DynamoDB itself is not affected.
type Orders struct {
	// Table is the table's name.
	Table string
	// Items is how many items Fill writes; item i has userId "u<i%Users>"
	// and orderId i/Users.
	Items int
	// Users is the number of partitions; default 1000.
	Users int
	// Seed makes the dataset reproducible.
	Seed uint64
	// NoStream leaves DynamoDB Streams off.
	NoStream bool
	// NoEmptyMaps leaves out the empty map every seventh item holds.
	// DynamoDB Local writes an empty map in a stream image as {}, a value
	// of no attribute type (real DynamoDB writes {"M":{}}); the SDK reads
	// that as nil or as the type of the value before it, so an item that
	// reaches the target through the stream may hold an empty list there.
	// Tests that replay the items' creation from the stream set it.
	NoEmptyMaps bool
}

// CreateTable creates the table with the stream on (NEW_AND_OLD_IMAGES,
// unless NoStream) and TTL on "expires", and waits for it.
func (o *Orders) CreateTable(ctx context.Context, db *dynamodb.Client) error {
	stream := &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages}
	if o.NoStream {
		stream = nil
	}
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(o.Table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("userId"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("orderId"), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("userId"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("orderId"), KeyType: types.KeyTypeRange},
		},
		StreamSpecification: stream,
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", o.Table, err)
	}
	if err := dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(o.Table)}, time.Minute); err != nil {
		return err
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(o.Table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("expires"), Enabled: aws.Bool(true)}})
	return err
}

func (o *Orders) users() int {
	if o.Users <= 0 {
		return 1000
	}
	return o.Users
}

// Key is item i's primary key.
func (o *Orders) Key(i int) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"userId":  &types.AttributeValueMemberS{Value: "u" + strconv.Itoa(i%o.users())},
		"orderId": &types.AttributeValueMemberN{Value: strconv.Itoa(i / o.users())},
	}
}

// Item builds item i, with values drawn from rng.
func (o *Orders) Item(rng *rand.Rand, i int) map[string]types.AttributeValue {
	item := o.Key(i)
	item["status"] = &types.AttributeValueMemberS{Value: []string{"new", "paid", "shipped", "rückerstattet ✓", "已取消"}[rng.IntN(5)]}
	item["total"] = &types.AttributeValueMemberN{Value: fmt.Sprintf("%d.%02d", rng.IntN(100000), rng.IntN(100))}
	item["delta"] = &types.AttributeValueMemberN{Value: "-0.000" + strconv.Itoa(1+rng.IntN(999))}
	item["precise"] = &types.AttributeValueMemberN{Value: "1234567890123456789012345678901234567" + strconv.Itoa(rng.IntN(10))}
	item["blob"] = &types.AttributeValueMemberB{Value: []byte{0, 0xff, byte(rng.IntN(256)), 'x', 0xc3}}
	item["gift"] = &types.AttributeValueMemberBOOL{Value: rng.IntN(2) == 0}
	item["coupon"] = &types.AttributeValueMemberNULL{Value: true}
	item["tags"] = &types.AttributeValueMemberSS{Value: []string{"t" + strconv.Itoa(rng.IntN(50)), "all", "ü"}}
	item["sizes"] = &types.AttributeValueMemberNS{Value: []string{"1", "2.5", strconv.Itoa(3 + rng.IntN(100))}}
	item["codes"] = &types.AttributeValueMemberBS{Value: [][]byte{{1}, {2, 0}, {byte(3 + rng.IntN(200))}}}
	item["lines"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{
		&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"sku": &types.AttributeValueMemberS{Value: "sku-" + strconv.Itoa(rng.IntN(1000))},
			"qty": &types.AttributeValueMemberN{Value: strconv.Itoa(1 + rng.IntN(9))},
		}},
		&types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberBOOL{Value: true}, &types.AttributeValueMemberNULL{Value: true}}},
		&types.AttributeValueMemberS{Value: ""},
	}}
	address := map[string]types.AttributeValue{
		"city": &types.AttributeValueMemberS{Value: "Zürich"},
		"zip":  &types.AttributeValueMemberN{Value: strconv.Itoa(8000 + rng.IntN(100))},
		"geo":  &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "47.37"}, &types.AttributeValueMemberN{Value: "8.54"}}},
	}
	if i%7 == 0 && !o.NoEmptyMaps {
		address["empty"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}
		address["none"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{}}
	}
	item["address"] = &types.AttributeValueMemberM{Value: address}
	if rng.IntN(5) == 0 {
		item["note"] = &types.AttributeValueMemberS{Value: ""}
	}
	if rng.IntN(10) == 0 {
		item["expires"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Add(time.Hour+time.Duration(rng.IntN(3600))*time.Second).Unix(), 10)}
	}
	return item
}

// Fill writes Items items with BatchWriteItem, eight requests at a time.
func (o *Orders) Fill(ctx context.Context, db *dynamodb.Client) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for start := 0; start < o.Items; start += 25 {
		rng := rand.New(rand.NewPCG(o.Seed, uint64(start)))
		var reqs []types.WriteRequest
		for i := start; i < min(start+25, o.Items); i++ {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: o.Item(rng, i)}})
		}
		g.Go(func() error { return BatchWrite(gctx, db, o.Table, reqs) })
	}
	return g.Wait()
}

// BatchWrite writes reqs to table, again and again until none is left
// unprocessed.
func BatchWrite(ctx context.Context, db *dynamodb.Client, table string, reqs []types.WriteRequest) error {
	for len(reqs) > 0 {
		out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs}})
		if err != nil {
			return fmt.Errorf("seed %s: %w", table, err)
		}
		reqs = out.UnprocessedItems[table]
	}
	return nil
}

// OrdersWriter changes a table of Orders the way a live service would:
// puts of new and existing items, updates that set and remove attributes
// and add to sets, and deletes.
type OrdersWriter struct {
	*Orders
	// Keys is the range of item numbers it works on; it may overlap the
	// seeded ones.
	Keys int
	Seed uint64
	// Rate is operations per second; 0 means as fast as DynamoDB answers.
	Rate int

	ops, errs atomic.Int64
	lastErr   atomic.Pointer[error]
}

// Ops is how many operations ran.
func (w *OrdersWriter) Ops() int64 { return w.ops.Load() }

// Errs is how many operations failed, and the last error.
func (w *OrdersWriter) Errs() (int64, error) {
	var last error
	if p := w.lastErr.Load(); p != nil {
		last = *p
	}
	return w.errs.Load(), last
}

// Run writes until ctx ends.
func (w *OrdersWriter) Run(ctx context.Context, db *dynamodb.Client) {
	rng := rand.New(rand.NewPCG(w.Seed, w.Seed+7))
	var tick <-chan time.Time
	if w.Rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(w.Rate))
		defer t.Stop()
		tick = t.C
	}
	for ctx.Err() == nil {
		if tick != nil {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
		}
		i := rng.IntN(w.Keys)
		if i%7 == 0 {
			i++ // see Orders: items with empty collections stay unchanged
		}
		var err error
		switch op := rng.IntN(10); {
		case op < 4:
			_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(w.Table), Item: w.Item(rng, i)})
		case op < 8:
			_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: aws.String(w.Table), Key: w.Key(i),
				UpdateExpression:         aws.String("SET #s = :s, #t = :t ADD tags :tag REMOVE coupon"),
				ExpressionAttributeNames: map[string]string{"#s": "status", "#t": "total"},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":s":   &types.AttributeValueMemberS{Value: "updated-" + strconv.Itoa(rng.IntN(100))},
					":t":   &types.AttributeValueMemberN{Value: strconv.Itoa(rng.IntN(1_000_000))},
					":tag": &types.AttributeValueMemberSS{Value: []string{"u" + strconv.Itoa(rng.IntN(20))}},
				},
			})
		default:
			_, err = db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(w.Table), Key: w.Key(i)})
		}
		w.ops.Add(1)
		if err != nil && !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "canceled") {
			w.errs.Add(1)
			w.lastErr.Store(&err)
		}
	}
}
