package chaos

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

	"github.com/cutover/cutover/test/datagen"
)

// ItemWriter is Writer for a DynamoDB table: it puts, updates and
// deletes items "i0".."i<Keys-1>" (partition key "id", type S), one call
// at a time, and every put or update writes "seq", a number larger than
// any written before, and "val", unique to that write. Calls are made one
// after the other, each after the previous answered, so an item's seq
// only grows in the table.
//
// An item is {id S, seq N, val S, n N, flag BOOL} and, for a share of
// them, expires N: the table's TTL attribute, in epoch seconds.
type ItemWriter struct {
	Table string
	// Keys is how many items it works on.
	Keys int
	Seed uint64
	// Rate is calls per second; 0 means as fast as DynamoDB answers.
	Rate int
	// TTLShare is the share of puts and updates that set expires, between
	// MinTTL and MaxTTL from now (defaults 5s and 60s); the other updates
	// remove it.
	TTLShare       float64
	MinTTL, MaxTTL time.Duration

	seq, ops, failed atomic.Int64
	lastErr          atomic.Pointer[error]
	paused, busy     atomic.Bool
}

// KeyAttr is the table's partition key.
const KeyAttr = "id"

// TTLAttr is the table's TTL attribute.
const TTLAttr = "expires"

// CreateTable creates the table with its stream on (NEW_AND_OLD_IMAGES)
// and TTL on TTLAttr, and waits until it is active.
func (w *ItemWriter) CreateTable(ctx context.Context, db *dynamodb.Client) error {
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(w.Table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(KeyAttr), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(KeyAttr), KeyType: types.KeyTypeHash}},
		StreamSpecification:  &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages},
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", w.Table, err)
	}
	if err := waitActive(ctx, db, w.Table); err != nil {
		return err
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(w.Table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(TTLAttr), Enabled: aws.Bool(true)}})
	if err != nil {
		return fmt.Errorf("turn on TTL of %s: %w", w.Table, err)
	}
	return nil
}

func waitActive(ctx context.Context, db *dynamodb.Client, table string) error {
	err := dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 2*time.Minute)
	if err != nil {
		return fmt.Errorf("wait for table %s to be active: %w", table, err)
	}
	return nil
}

// SetStream turns the table's stream off or on (NEW_AND_OLD_IMAGES) and
// waits until the table is active again. Turned on again, the stream is a
// new one: what was written while it was off is in no stream.
func SetStream(ctx context.Context, db *dynamodb.Client, table string, on bool) error {
	spec := &types.StreamSpecification{StreamEnabled: aws.Bool(on)}
	if on {
		spec.StreamViewType = types.StreamViewTypeNewAndOldImages
	}
	if _, err := db.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(table), StreamSpecification: spec}); err != nil {
		return fmt.Errorf("turn the stream of %s %s: %w", table, map[bool]string{true: "on", false: "off"}[on], err)
	}
	return waitActive(ctx, db, table)
}

// Key is item i's key value.
func (w *ItemWriter) Key(i int) string { return "i" + strconv.Itoa(i) }

// Ops is how many calls were made; Failed how many failed, and the last
// error.
func (w *ItemWriter) Ops() int64 { return w.ops.Load() }

// Failed is how many calls returned an error, and the last one.
func (w *ItemWriter) Failed() (int64, error) {
	var last error
	if p := w.lastErr.Load(); p != nil {
		last = *p
	}
	return w.failed.Load(), last
}

// Quiesce pauses the writer and waits until its call in flight, if any,
// has answered.
func (w *ItemWriter) Quiesce(ctx context.Context) error {
	w.paused.Store(true)
	return waitIdle(ctx, &w.busy)
}

// Resume lets a paused writer go on.
func (w *ItemWriter) Resume() { w.paused.Store(false) }

// Fill puts every item once.
func (w *ItemWriter) Fill(ctx context.Context, db *dynamodb.Client) error {
	rng := rand.New(rand.NewPCG(w.Seed, 3))
	var reqs []types.WriteRequest
	for i := range w.Keys {
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: w.item(rng, i)}})
		if len(reqs) == 25 || i == w.Keys-1 {
			if err := datagen.BatchWrite(ctx, db, w.Table, reqs); err != nil {
				return err
			}
			reqs = nil
		}
	}
	return nil
}

func (w *ItemWriter) item(rng *rand.Rand, i int) map[string]types.AttributeValue {
	seq := w.seq.Add(1)
	item := map[string]types.AttributeValue{
		KeyAttr:  &types.AttributeValueMemberS{Value: w.Key(i)},
		SeqField: &types.AttributeValueMemberN{Value: strconv.FormatInt(seq, 10)},
		"val":    &types.AttributeValueMemberS{Value: uniqueVal(rng, seq)},
		"n":      &types.AttributeValueMemberN{Value: strconv.Itoa(rng.IntN(1000))},
		"flag":   &types.AttributeValueMemberBOOL{Value: rng.IntN(2) == 0},
	}
	if rng.Float64() < w.TTLShare {
		item[TTLAttr] = &types.AttributeValueMemberN{Value: w.expires(rng)}
	}
	return item
}

func uniqueVal(rng *rand.Rand, seq int64) string {
	return fmt.Sprintf("%016d:%016x", seq, rng.Uint64())
}

func (w *ItemWriter) expires(rng *rand.Rand) string {
	lo, hi := w.MinTTL, w.MaxTTL
	if lo == 0 {
		lo = 5 * time.Second
	}
	if hi <= lo {
		hi = 60 * time.Second
	}
	return strconv.FormatInt(time.Now().Add(lo+time.Duration(rng.Int64N(int64(hi-lo)))).Unix(), 10)
}

// Run writes until ctx ends: 45% puts (of new or existing items), 30%
// updates (which create a missing item), 25% deletes. Errors are
// counted, not returned.
func (w *ItemWriter) Run(ctx context.Context, db *dynamodb.Client) {
	rng := rand.New(rand.NewPCG(w.Seed, 5))
	var tick <-chan time.Time
	if w.Rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(w.Rate))
		defer t.Stop()
		tick = t.C
	}
	defer w.busy.Store(false)
	for ctx.Err() == nil {
		w.busy.Store(true)
		if w.paused.Load() {
			w.busy.Store(false)
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if tick != nil {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
			if w.paused.Load() {
				continue // paused while waiting: Quiesce waits for no call
			}
		}
		i := rng.IntN(w.Keys)
		var err error
		switch op := rng.IntN(20); {
		case op < 9:
			_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(w.Table), Item: w.item(rng, i)})
		case op < 15:
			seq := w.seq.Add(1)
			expr := "SET #seq = :seq, val = :val, flag = :flag ADD n :one"
			values := map[string]types.AttributeValue{
				":seq":  &types.AttributeValueMemberN{Value: strconv.FormatInt(seq, 10)},
				":val":  &types.AttributeValueMemberS{Value: uniqueVal(rng, seq)},
				":flag": &types.AttributeValueMemberBOOL{Value: rng.IntN(2) == 0},
				":one":  &types.AttributeValueMemberN{Value: "1"},
			}
			if rng.Float64() < w.TTLShare {
				expr = "SET #seq = :seq, val = :val, flag = :flag, #ttl = :ttl ADD n :one"
				values[":ttl"] = &types.AttributeValueMemberN{Value: w.expires(rng)}
			} else {
				expr += " REMOVE #ttl"
			}
			_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: aws.String(w.Table), Key: map[string]types.AttributeValue{KeyAttr: &types.AttributeValueMemberS{Value: w.Key(i)}},
				UpdateExpression: aws.String(expr), ExpressionAttributeNames: map[string]string{"#seq": SeqField, "#ttl": TTLAttr},
				ExpressionAttributeValues: values,
			})
		default:
			_, err = db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(w.Table),
				Key: map[string]types.AttributeValue{KeyAttr: &types.AttributeValueMemberS{Value: w.Key(i)}}})
		}
		w.ops.Add(1)
		if err != nil && !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "canceled") {
			w.failed.Add(1)
			w.lastErr.Store(&err)
		}
	}
}

// TableState reads every item of table (a consistent Scan) and returns
// the Redis key each becomes and its state there, through cutover's
// DynamoDB → Redis hash mapping (docs/type-mapping.md "DynamoDB → Redis", item format
// hash): one field per attribute, S as is, N as its decimal text, BOOL
// "true"/"false"; the key is keyPrefix + the id; TTLAttr (epoch seconds)
// becomes the expiry. An item whose expiry has passed is absent, as
// DynamoDB's TTL will delete it and Redis already expired it.
func TableState(ctx context.Context, db *dynamodb.Client, table, keyPrefix string) (map[string]KeyState, error) {
	out := map[string]KeyState{}
	now := time.Now().UnixMilli()
	err := scanTable(ctx, db, table, func(item map[string]types.AttributeValue) error {
		h := map[string]string{}
		for name, a := range item {
			switch v := a.(type) {
			case *types.AttributeValueMemberS:
				h[name] = v.Value
			case *types.AttributeValueMemberN:
				h[name] = v.Value
			case *types.AttributeValueMemberBOOL:
				h[name] = strconv.FormatBool(v.Value)
			default:
				return fmt.Errorf("item %v of %s: attribute %s of type %T is not one the item writer writes", item[KeyAttr], table, name, a)
			}
		}
		st := KeyState{Type: "hash", Value: HashValue(h)}
		if n, err := strconv.ParseInt(h[SeqField], 10, 64); err == nil {
			st.Seq, st.HasSeq = n, true
		}
		if e, ok := h[TTLAttr]; ok {
			secs, err := strconv.ParseInt(e, 10, 64)
			if err != nil {
				return fmt.Errorf("item %s of %s: %s %q is not epoch seconds", h[KeyAttr], table, TTLAttr, e)
			}
			st.ExpireAt = secs * 1000
			if st.ExpireAt <= now {
				return nil
			}
		}
		out[keyPrefix+h[KeyAttr]] = st
		return nil
	})
	return out, err
}
