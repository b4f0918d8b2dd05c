package dynamodb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/pipeline"
)

// TestRouterItem: what plan sizes is what Apply would write, and what
// Apply would reject is unmappable.
func TestRouterItem(t *testing.T) {
	users, err := New(nil, Options{Table: "users", Rule: &Rule{Match: "user:*", Key: "user:{id}"}})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRouter([]Route{{Match: "user:*", Sink: users}}, nil)
	now := time.Now()
	up := func(key string) pipeline.Event {
		return pipeline.Event{Key: []byte(key), Op: pipeline.OpUpsert, Version: pipeline.Version{1},
			Value: pipeline.Value{Type: pipeline.TypeHash, Hash: []pipeline.Field{{Name: []byte("name"), Value: []byte("ada")}}}}
	}
	e := up("user:1")
	item, err := r.Item(&e, now)
	if err != nil {
		t.Fatalf("user:1: %v", err)
	}
	if n := ItemSize(item); n < int64(len("id")+1+len("name")+3) {
		t.Errorf("item %v of %d bytes", item, n)
	}
	e = up("order:1")
	if _, err := r.Item(&e, now); !errors.Is(err, pipeline.ErrUnmappable) {
		t.Errorf("a key no rule takes, without a default table: %v, want unmappable", err)
	}
	e = up("user:2")
	e.Chunk = &pipeline.Chunk{}
	if _, err := r.Item(&e, now); !errors.Is(err, pipeline.ErrUnmappable) {
		t.Errorf("a piece of a big key: %v, want unmappable", err)
	}
}

// describeOnly answers DescribeTable from tables; a table it does not
// hold is missing. Other calls panic.
type describeOnly struct {
	dynamoAPI
	tables map[string]*types.TableDescription
}

func (d describeOnly) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	t, ok := d.tables[aws.ToString(in.TableName)]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("not found")}
	}
	return &dynamodb.DescribeTableOutput{Table: t}, nil
}

// TestRouterPreflight: one step a table, and the slowest table's warm
// throughput is what plan times the copy against.
func TestRouterPreflight(t *testing.T) {
	db := describeOnly{tables: map[string]*types.TableDescription{"users": {
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeB}},
		WarmThroughput:       &types.TableWarmThroughputDescription{WriteUnitsPerSecond: aws.Int64(9000)},
	}}}
	sink := func(table string, create bool) *Sink {
		s, err := New(db, Options{Table: table, KeyType: "B", CreateTable: create})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	r := NewRouter([]Route{{Match: "user:*", Sink: sink("users", false)}, {Match: "order:*", Sink: sink("orders", true)},
		{Match: "cart:*", Sink: sink("carts", false)}}, nil)
	checks, warm := r.Preflight(context.Background())
	if warm != NewTableWarmWrites {
		t.Errorf("warm writes %d, want the new table's %d", warm, NewTableWarmWrites)
	}
	want := []string{
		"target table users: exists with partition key pk of type B and no sort key",
		"target table orders: does not exist: created on the first run (create_table), on-demand, with partition key pk of type B and no sort key",
		"target table carts: dynamodb table carts does not exist",
	}
	if len(checks) != len(want) {
		t.Fatalf("%d steps, want %d: %+v", len(checks), len(want), checks)
	}
	for i, c := range checks {
		got := c.Name + ": " + c.Detail
		if c.Err != nil {
			got = c.Name + ": " + c.Err.Error()
		}
		if !strings.HasPrefix(got, want[i]) {
			t.Errorf("step %d = %q, want it to start with %q", i, got, want[i])
		}
	}
}
