package test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// The tests of this file pin what the DynamoDB source must do between
// commands.

// changeOrders marks items from..to-1 as changed (a new status) and
// deletes items to..to+deletes-1, directly in the source table.
func changeOrders(t *testing.T, db *dynamodb.Client, o *datagen.Orders, from, to, deletes int) {
	t.Helper()
	// A bound for the state, not a speed: a busy DynamoDB Local takes
	// about ten writes a second to a table with a stream.
	ctx := testCtx(t, 5*time.Minute)
	for i := from; i < to; i++ {
		_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(o.Table), Key: o.Key(i),
			UpdateExpression:          aws.String("SET #s = :s"),
			ExpressionAttributeNames:  map[string]string{"#s": "status"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: "changed-" + strconv.Itoa(i)}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := to; i < to+deletes; i++ {
		if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(o.Table), Key: o.Key(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTableBackfillThenReplicateLosesNothing: backfill took no stream
// position before its scan, so replicate afterwards found no stream
// checkpoint, started at LATEST, saw the scan done and did not heal:
// every change made between the two commands was lost (reproduced: 500
// items backfilled, 50 updated and 50 deleted, then replicate: reconcile
// found 50 different and 50 only in the target). Backfill now takes the
// stream's position first, and replicate reads from it.
func TestTableBackfillThenReplicateLosesNothing(t *testing.T) {
	t.Parallel()
	stack.LoadDynamoDB(t, 1)
	db := dynamoClient(t)
	// The stream holds the items' creation too, and replicate replays it:
	// see datagen.Orders.NoEmptyMaps.
	o := &datagen.Orders{Table: stack.Unique("orders"), Items: 500, Seed: 5, NoEmptyMaps: true}
	createOrders(t, db, o)
	dst := stack.NewRedis(t)
	p := newTablePipeline(t, o.Table, "--target-redis-addr", dst.Addr, "--target-item-format", "json")
	res := stack.Run(testCtx(t, 2*time.Minute), t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("backfill exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	changeOrders(t, db, o, 0, 50, 50)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	waitConverged(t, p, 2*time.Minute)
	if code := proc.Stop(); code != 0 {
		out, errOut := proc.Output()
		t.Fatalf("replicate exited %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut := proc.Output(); !strings.Contains(errOut, "scan=false heal=false") {
		t.Errorf("replicate scanned the table again: the backfill's position needs no new scan\n%s", errOut)
	}
}

// TestTableSecondBackfillCopiesChanges: every scanned row carries the
// same version (sequence 1 of the epoch), so a second backfill's rows tied
// with the first one's and were all skipped as older: items changed in
// between kept their old values in the target. A new scan over an earlier
// one now starts a new epoch.
func TestTableSecondBackfillCopiesChanges(t *testing.T) {
	t.Parallel()
	db := dynamoClient(t)
	o := newOrders(t, db, 300, true) // no stream: only scans here
	dst := stack.NewRedis(t)
	p := newTablePipeline(t, o.Table, "--target-redis-addr", dst.Addr, "--target-item-format", "json")
	for round := range 2 {
		res := stack.Run(testCtx(t, 2*time.Minute), t, append([]string{"backfill"}, p.args...)...)
		if res.Code != 0 {
			t.Fatalf("backfill %d exited %d\n%s\n%s", round+1, res.Code, res.Stdout, res.Stderr)
		}
		if round == 0 {
			changeOrders(t, db, o, 0, 40, 0)
		}
	}
	waitConverged(t, p, time.Minute)
}
