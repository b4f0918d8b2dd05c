package dynamodb

import (
	"context"
	"testing"
	"time"

	"github.com/cutover/cutover/pipeline/reconcile"
	"github.com/cutover/cutover/sinks/sinktest"
	"github.com/cutover/cutover/test/stack"
)

type target struct{ *Sink }

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
		s, err := New(db, Options{Table: table, KeyType: "B", CreateTable: true, Endpoint: ep})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		return target{s}
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
