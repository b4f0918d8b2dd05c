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
