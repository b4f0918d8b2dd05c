package chaos

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/test/stack"
)

// TestCheckStreamSeesRegressions: the stream check must catch an older
// value written over a newer one, and a value no newer than the deleted
// one written after a tombstone (a resurrection), and nothing else — not
// a tombstone, not a key written again newer after its delete. A stream
// with no record must fail the check, not pass it.
func TestCheckStreamSeesRegressions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := stack.DynamoDB(t)
	streams, err := StreamsClient(ctx, stack.DynamoDBEndpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	table := stack.Unique("streamcheck")
	stack.DropTables(t, db, table, table+"-empty")
	if err := CreateTargetTable(ctx, db, table, GenericLayout); err != nil {
		t.Fatal(err)
	}
	put := func(key string, seq int) {
		t.Helper()
		item := map[string]types.AttributeValue{
			"pk":              &types.AttributeValueMemberS{Value: key},
			"cutover_version": &types.AttributeValueMemberB{Value: []byte{byte(seq)}},
		}
		if seq < 0 {
			item[deletedAttr] = &types.AttributeValueMemberBOOL{Value: true}
		} else {
			item["cutover_type"] = &types.AttributeValueMemberS{Value: "string"}
			item["value"] = &types.AttributeValueMemberB{Value: fmt.Appendf(nil, "%016d:x", seq)}
		}
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	put("a", 5)
	put("a", 7)
	put("a", 3) // older over newer
	put("a", 8)
	put("a", -1) // tombstone
	put("a", 8)  // the deleted value back
	put("b", 1)
	put("b", -1)
	put("b", 4) // created again, newer: fine
	rep, err := CheckStream(ctx, db, streams, table, GenericLayout)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 9 || rep.Regressions != 1 || rep.Resurrected != 1 || rep.Tombstones != 2 || rep.Keys != 2 {
		t.Fatalf("want 9 records of 2 keys, 2 tombstones, 1 regression, 1 resurrection; got %s", rep)
	}

	if err := CreateTargetTable(ctx, db, table+"-empty", GenericLayout); err != nil {
		t.Fatal(err)
	}
	if rep, err := CheckStream(ctx, db, streams, table+"-empty", GenericLayout); err == nil || !strings.Contains(err.Error(), "no record") {
		t.Fatalf("an empty stream passed the check: %v, %s", err, rep)
	}
}
