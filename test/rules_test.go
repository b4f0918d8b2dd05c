package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/test/stack"
)

// writeUsers writes the hashes and strings the rules of
// TestRedisToNaturalItems map.
func writeUsers(ctx context.Context, rdb *goredis.Client, rng *rand.Rand, i int) {
	pipe := rdb.Pipeline()
	u := strconv.Itoa(i)
	switch rng.IntN(8) {
	case 0:
		pipe.Del(ctx, "user:"+u)
	case 1:
		pipe.Expire(ctx, "user:"+u, time.Duration(1+rng.IntN(3))*time.Hour)
	case 2:
		pipe.Set(ctx, "session:"+u, "token-"+strconv.Itoa(rng.IntN(1e6)), time.Hour)
	case 3:
		pipe.HSet(ctx, fmt.Sprintf("order:u%d:%d", i%50, rng.IntN(20)), "status", "paid", "total", fmt.Sprintf("%d.%02d", rng.IntN(1000), 1+rng.IntN(99)))
	default:
		pipe.HSet(ctx, "user:"+u, "name", "Ada Lovelace "+u, "age", strconv.Itoa(18+rng.IntN(80)),
			"avatar", string([]byte{0, 0xff, byte(rng.IntN(256))}), "prefs", fmt.Sprintf(`{"theme":"dark","n":%d,"tags":["a","b"]}`, rng.IntN(100)),
			"city", "Zürich")
	}
	_, _ = pipe.Exec(ctx)
}

// TestRedisToNaturalItems maps Redis keys to natural items of three tables
// with rules — user:{userId} (typed fields), order:{userId}:{orderId}
// (a numeric sort key) and session:{id} (strings) — while a writer changes
// them. Keys that match no rule are dead-lettered, not dropped. Once the
// writer stops, reconcile (both ways) finds no difference, and the items
// have the shape the rules promise.
func TestRedisToNaturalItems(t *testing.T) {
	t.Parallel()
	stack.LoadDynamoDB(t, 1)
	src := stack.NewRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	rng := rand.New(rand.NewPCG(4, 2))
	for i := range 3000 {
		writeUsers(ctx, src.Client, rng, i)
	}
	for i := range 5 {
		src.Client.Set(ctx, "misc:"+strconv.Itoa(i), "no rule takes me", 0)
	}
	p := basePipeline(t, src)
	users, orders, sessions := p.name+"-users", p.name+"-orders", p.name+"-sessions"
	stack.DropTables(t, dynamoClient(t), users, orders, sessions)
	cfg := filepath.Join(t.TempDir(), "rules.yaml")
	err := os.WriteFile(cfg, fmt.Appendf(nil, `sink:
  dynamodb:
    endpoint: %s
    create_table: true
    rules:
      - match: "user:*"
        table: %s
        key: "user:{userId}"
        key_types: {userId: N}
        fields: {age: number, avatar: binary, prefs: json}
      - match: "order:*"
        table: %s
        key: "order:{userId}:{orderId}"
        key_types: {orderId: N}
        fields: {total: number}
      - match: "session:*"
        table: %s
        key: "session:{id}"
        value_attribute: token
`, stack.DynamoDBEndpoint(t), users, orders, sessions), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.args = append(p.args, "--config", cfg)

	res := stack.Run(ctx, t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 3 || summaryCount(t, res.Stdout, "dead-lettered") != 5 || !strings.Contains(res.Stderr, "matches no rule") {
		t.Fatalf("backfill: exit %d, want 3 with the 5 misc keys dead-lettered\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}

	p.args = append(p.args, "--include", "user:*", "--include", "order:*", "--include", "session:*")
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	wctx, stop := context.WithTimeout(ctx, 6*time.Second)
	for wctx.Err() == nil {
		writeUsers(wctx, src.Client, rng, rng.IntN(3000))
		time.Sleep(time.Millisecond)
	}
	stop()
	waitConverged(t, p, 90*time.Second)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d on SIGTERM", code)
	}

	// The shape, checked without cutover's code.
	db := dynamoClient(t)
	n := 0
	for i := range 3000 {
		h, err := src.Client.HGetAll(ctx, "user:"+strconv.Itoa(i)).Result()
		if err != nil || len(h) == 0 {
			continue
		}
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(users), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"userId": &types.AttributeValueMemberN{Value: strconv.Itoa(i)}}})
		if err != nil {
			t.Fatal(err)
		}
		it := out.Item
		name, _ := it["name"].(*types.AttributeValueMemberS)
		age, _ := it["age"].(*types.AttributeValueMemberN)
		avatar, _ := it["avatar"].(*types.AttributeValueMemberB)
		prefs, _ := it["prefs"].(*types.AttributeValueMemberM)
		if name == nil || name.Value != h["name"] || age == nil || age.Value != h["age"] || avatar == nil || string(avatar.Value) != h["avatar"] ||
			prefs == nil || len(prefs.Value) != 3 {
			t.Fatalf("user:%d is %v, from hash %q", i, it, h)
		}
		n++
	}
	if n < 1000 {
		t.Fatalf("only %d users checked", n)
	}
}
