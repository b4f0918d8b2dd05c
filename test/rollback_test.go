package test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/test/stack"
)

// newRollBack sets up a roll-back after the switch: a table created as
// docs/switch.md asks (named from name), which the application writes to
// now, and the old Redis to return to, both empty.
func newRollBack(t *testing.T, name string) (db *dynamodb.Client, table string, old *stack.Redis) {
	t.Helper()
	stack.LoadDynamoDB(t, 1)
	db = dynamoClient(t)
	old = stack.NewRedis(t)
	table = stack.Unique(name)
	createSwitchTable(t, db, table)
	return db, table, old
}

func putGeneric(t *testing.T, db *dynamodb.Client, table string, item map[string]types.AttributeValue) {
	t.Helper()
	_, err := db.PutItem(testCtx(t, time.Minute), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item})
	must(t, err)
}

func genericString(key, v string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key},
		"cutover_type": &types.AttributeValueMemberS{Value: "string"}, "value": &types.AttributeValueMemberB{Value: []byte(v)},
		"cutover_version": &types.AttributeValueMemberB{Value: []byte{0, 0, 0, 0, 0, 0, 0, 1, 1}}}
}

// TestRollBackGateCountsUnreadableItems: after the switch the application
// may write an item in a shape the reverse pipeline cannot read back
// (source.dynamodb.format: redis). Such an item was rejected under its
// item key, so reconcile found no source state for its Redis key: the old
// Redis's copy counted as "only in the target", and --repair
// --delete-extra deleted it; and reconcile exited 0 with the items
// uncopied, since a key the source cannot read is "not comparable". Now
// the reject names the Redis key, the key is not comparable (never
// deleted), and the roll-back's gate exits 4 until the items are fixed.
func TestRollBackGateCountsUnreadableItems(t *testing.T) {
	t.Parallel()
	db, table, old := newRollBack(t, "rollback-gate")
	ctx := testCtx(t, time.Minute)
	putGeneric(t, db, table, genericString("ok", "v"))
	// The application, after the switch, created a key in the wrong shape.
	putGeneric(t, db, table, map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "bad-new"},
		"name": &types.AttributeValueMemberS{Value: "x"}})
	// ... and overwrote a key the old Redis holds, in the wrong shape.
	putGeneric(t, db, table, map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "bad-old"},
		"cutover_type": &types.AttributeValueMemberS{Value: "string"}, "value": &types.AttributeValueMemberS{Value: "new"}})
	must(t, old.Client.Set(ctx, "ok", "v", 0).Err())
	must(t, old.Client.Set(ctx, "bad-old", "old", 0).Err())

	rev := newTablePipeline(t, table, "--source-format", "redis", "--target-redis-addr", old.Addr)
	res := stack.Run(testCtx(t, 3*time.Minute), t, append([]string{"reconcile", "--recheck-delay", "300ms"}, rev.args...)...)
	if res.Code != 4 || !strings.Contains(res.Stdout, "not in cutover's Redis mapping") {
		t.Errorf("reconcile exited %d, want 4 and the items named:\n%s\n%s", res.Code, res.Stdout, stack.Tail(res.Stderr, 10))
	}
	res = stack.Run(testCtx(t, 3*time.Minute), t, append([]string{"reconcile", "--output", "json", "--recheck-delay", "300ms", "--repair", "--delete-extra"}, rev.args...)...)
	if res.Code != 4 {
		t.Errorf("reconcile --repair --delete-extra exited %d, want 4 (the unreadable items remain):\n%s\n%s", res.Code, res.Stdout, stack.Tail(res.Stderr, 10))
	}
	// Let a sink apply the repairs.
	// A sink applies whatever the repair published; the dead-letter count
	// says it consumed the rejects (the topic's last records).
	sink := stack.Start(t, nil, append([]string{"sink"}, rev.args...)...)
	waitLagSettled(t, rev, 2*time.Minute)
	stopClean(t, "sink", sink)
	if n, _ := old.Client.Exists(ctx, "bad-old").Result(); n == 0 {
		t.Errorf("reconcile --repair --delete-extra deleted bad-old from the old Redis: the table holds it (unreadable), it is not 'only in the target'")
	}
}

// TestRollBackHealLeavesTheOldStoresOwnKeys: a heal of the reverse
// pipeline (a gap in the table's stream) ends with a truncate that sweeps
// the target. It swept every key of the old Redis without a version key:
// keys the reverse pipeline never wrote, because the forward pipeline did
// not carry them (a Redis stream, an excluded key), were deleted from the
// store being rolled back to. The sweep now takes only the pipeline's own
// keys.
func TestRollBackHealLeavesTheOldStoresOwnKeys(t *testing.T) {
	t.Parallel()
	db, table, old := newRollBack(t, "rollback-heal")
	ctx := testCtx(t, 5*time.Minute)
	putGeneric(t, db, table, genericString("a", "1"))
	must(t, old.Client.Set(ctx, "a", "1", 0).Err())
	// Keys the forward pipeline did not carry (a Redis stream has no
	// DynamoDB mapping; an --exclude'd key).
	must(t, old.Client.XAdd(ctx, &goredis.XAddArgs{Stream: "events", Values: []string{"f", "v"}}).Err())
	must(t, old.Client.Set(ctx, "local:cache", "x", 0).Err())

	rev := newTablePipeline(t, table, "--source-format", "redis", "--target-redis-addr", old.Addr)
	reverse := stack.Start(t, nil, append([]string{"replicate"}, rev.args...)...)
	waitLog(t, reverse, 3*time.Minute, func(s string) bool { return strings.Contains(s, "snapshot published") })
	drainSwitch(t, rev)
	stopClean(t, "replicate (reverse)", reverse)
	for _, k := range []string{"events", "local:cache"} {
		if n, _ := old.Client.Exists(ctx, k).Result(); n != 1 {
			t.Fatalf("%s gone before the gap", k)
		}
	}
	// A gap: the stream is turned off and on (a new stream ARN) while the
	// reverse pipeline is stopped.
	toggle := func(on bool) {
		spec := &types.StreamSpecification{StreamEnabled: aws.Bool(on)}
		if on {
			spec.StreamViewType = types.StreamViewTypeNewAndOldImages
		}
		_, err := db.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(table), StreamSpecification: spec})
		must(t, err)
		must(t, dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 4*time.Minute))
	}
	toggle(false)
	toggle(true)
	reverse = stack.Start(t, nil, append([]string{"replicate"}, rev.args...)...)
	waitLog(t, reverse, 3*time.Minute, func(s string) bool { return strings.Contains(s, "heal done") })
	drainSwitch(t, rev)
	stopClean(t, "replicate (reverse, healed)", reverse)
	for _, k := range []string{"a", "events", "local:cache"} {
		if n, _ := old.Client.Exists(context.Background(), k).Result(); n != 1 {
			t.Errorf("%s was deleted from the old Redis by the reverse pipeline's heal sweep", k)
		}
	}
}
