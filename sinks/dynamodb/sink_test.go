package dynamodb

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/pipeline/reconcile"
	"github.com/cutover/cutover/sinks/sinktest"
	"github.com/cutover/cutover/test/stack"
)

type target struct {
	*Sink
	db *faultyDB
}

var _ sinktest.Faults = target{}

func (t target) Throttle(n int) { t.db.set(func() { t.db.throttle = n }) }
func (t target) Partial(n int)  { t.db.set(func() { t.db.partialPuts, t.db.partialGets = n, n }) }

// faultyDB is DynamoDB with refusals on demand, for the contract's
// Faults: the calls are made on the real table unless refused.
type faultyDB struct {
	dynamoAPI
	mu sync.Mutex
	// throttle: PutItem calls still to refuse as throttled.
	throttle int
	// partialPuts: PutItem calls still to refuse, every other call;
	// partialGets: BatchGetItem calls still to answer in part.
	partialPuts, partialGets int
	puts                     int
}

func (f *faultyDB) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

var errThrottled = &types.ProvisionedThroughputExceededException{Message: aws.String("throttled by the contract test")}

func (f *faultyDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.mu.Lock()
	f.puts++
	refuse := f.throttle > 0 || (f.partialPuts > 0 && f.puts%2 == 1)
	switch {
	case f.throttle > 0:
		f.throttle--
	case refuse:
		f.partialPuts--
	}
	f.mu.Unlock()
	if refuse {
		return nil, errThrottled
	}
	return f.dynamoAPI.PutItem(ctx, in, o...)
}

// BatchGetItem asks DynamoDB for the first half of the keys (at least
// one) and answers the rest as unprocessed, while partialGets lasts.
func (f *faultyDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	f.mu.Lock()
	partial := f.partialGets > 0
	if partial {
		f.partialGets--
	}
	f.mu.Unlock()
	if !partial {
		return f.dynamoAPI.BatchGetItem(ctx, in, o...)
	}
	asked := types.KeysAndAttributes{}
	left := map[string]types.KeysAndAttributes{}
	var table string
	for name, ka := range in.RequestItems {
		table, asked = name, ka
		half := (len(ka.Keys) + 1) / 2
		asked.Keys = ka.Keys[:len(ka.Keys)-half]
		rest := ka
		rest.Keys = ka.Keys[len(ka.Keys)-half:]
		left[name] = rest
	}
	out := &dynamodb.BatchGetItemOutput{Responses: map[string][]map[string]types.AttributeValue{}}
	if len(asked.Keys) > 0 {
		var err error
		if out, err = f.dynamoAPI.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: asked}}, o...); err != nil {
			return nil, err
		}
	}
	out.UnprocessedKeys = left
	return out, nil
}

func (t target) Read(ctx context.Context, key []byte) (reconcile.Found, error) {
	found, err := t.Lookup(ctx, [][]byte{key})
	return found[string(key)], err
}

func TestContract(t *testing.T) {
	ep := stack.DynamoDBEndpoint(t)
	db := stack.DynamoDB(t)
	sinktest.Run(t, sinktest.Caps{Chunks: false, TTLPrecision: time.Second}, func(t *testing.T) sinktest.Target {
		table := stack.Unique("contract")
		stack.DropTables(t, db, table)
		fdb := &faultyDB{dynamoAPI: db}
		s, err := New(fdb, Options{Table: table, KeyType: "B", CreateTable: true, Endpoint: ep})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		return target{s, fdb}
	})
}

// Reconcile can ask for a key twice in one lookup (a key re-checked while
// it is also listed); BatchGetItem refuses such a list.
func TestLookupTakesAKeyTwice(t *testing.T) {
	db := stack.DynamoDB(t)
	table := stack.Unique("lookup")
	stack.DropTables(t, db, table)
	s, err := New(db, Options{Table: table, KeyType: "B", CreateTable: true, Endpoint: stack.DynamoDBEndpoint(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	found, err := s.Lookup(context.Background(), [][]byte{[]byte("a"), []byte("b"), []byte("a")})
	if err != nil {
		t.Fatalf("lookup with a key twice: %v", err)
	}
	if len(found) != 2 || found["a"].Exists || found["b"].Exists {
		t.Fatalf("lookup of two absent keys = %+v", found)
	}
}
