package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/test/stack"
)

// Cutover issue 13, item 11: distinct source keys collapsed onto one
// target key. DynamoDB → Redis, the default template {pk}:{sk} gave the
// items ("a:b","c") and ("a","b:c") the one Redis key a:b:c, so they
// overwrote each other and a delete of one removed both; a template
// without the sort key was accepted. Redis → DynamoDB, a rule with a
// number key sent user:1, user:01 and user:1.0 to the one item id=1.
// Each mapping is one-to-one now: what would collide is dead-lettered with
// its reason (exit status 3), everything else is applied, and a template
// that cannot be one-to-one is refused before anything is read.

// deadLetterReasons reads the pipeline's dead-letter topic until it holds want
// records, and returns each record's cutover.error header by record key.
func deadLetterReasons(t *testing.T, name string, want int) map[string]string {
	t.Helper()
	out, n := readDeadLetters(t, name, want, "cutover.error", 30*time.Second)
	if n != want {
		t.Fatalf("dead-letter topic holds %d records, want %d: %v", n, want, out)
	}
	return out
}

// redisDataKeys counts a Redis database's keys, the sink's version keys
// left out.
func redisDataKeys(t *testing.T, dst *stack.Redis, db int) int {
	t.Helper()
	cl := goredis.NewClient(&goredis.Options{Addr: dst.Addr, DB: db})
	defer cl.Close()
	return dataKeys(t, cl, "")
}

func TestKeyMapDynamoDBToRedisDeadLettersCollidingItems(t *testing.T) {
	t.Parallel()
	db := dynamoClient(t)
	ctx := testCtx(t, 4*time.Minute)
	table := stack.Unique("keymap")
	createTable(t, db, table, keyAttr{"pk", types.ScalarAttributeTypeS}, keyAttr{"sk", types.ScalarAttributeTypeS})
	put := func(pk, sk, v string) {
		t.Helper()
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}, "v": &types.AttributeValueMemberS{Value: v}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Three pairs of items whose keys the default template joins alike;
	// in each pair the one whose pk holds ':' cannot be told apart.
	colliding := [][2]string{{"a:b", "c"}, {"x:", "y"}, {"m:n:", "o"}}
	twins := [][2]string{{"a", "b:c"}, {"x", ":y"}, {"m", "n::o"}}
	for i := range colliding {
		put(colliding[i][0], colliding[i][1], "colliding")
		put(twins[i][0], twins[i][1], "twin")
	}
	const plain = 40
	for i := range plain {
		put(fmt.Sprintf("u%d", i), fmt.Sprintf("o-%d", i), "plain")
	}
	dst := stack.NewRedis(t)

	// A template that leaves out the sort key, or cannot be read back, is
	// refused at start: nothing is read or written.
	refused := newTablePipeline(t, table, "--target-redis-addr", dst.Addr, "--target-key-template", "item:{pk}")
	res := stack.Run(ctx, t, append([]string{"backfill"}, refused.args...)...)
	// Exit status 1 until cmd/cutover reports it as a configuration
	// error (2); either way it is refused before anything is read.
	if res.Code != 2 || !strings.Contains(res.Stderr, "leaves out the key attribute sk") {
		t.Fatalf("a template without the sort key: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	refused = newTablePipeline(t, table, "--target-redis-addr", dst.Addr, "--target-key-template", "{pk}{sk}")
	res = stack.Run(ctx, t, append([]string{"backfill"}, refused.args...)...)
	if res.Code != 2 || !strings.Contains(res.Stderr, "side by side") {
		t.Fatalf("a template with adjacent placeholders: exit %d, want 2\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if n := redisDataKeys(t, dst, 0); n != 0 {
		t.Fatalf("refused pipelines wrote %d keys", n)
	}

	// The default template, {pk}:{sk}: the three colliding items are
	// dead-lettered, their twins and the rest are copied.
	p := newTablePipeline(t, table, "--target-redis-addr", dst.Addr)
	res = stack.Run(ctx, t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 3 || summaryCount(t, res.Stdout, "dead-lettered") != int64(len(colliding)) {
		t.Fatalf("backfill: exit %d, want 3 with %d items dead-lettered\n%s\n%s", res.Code, len(colliding), res.Stdout, res.Stderr)
	}
	for _, reason := range deadLetterReasons(t, p.name, len(colliding)) {
		if !strings.Contains(reason, "key attribute pk") || !strings.Contains(reason, `":"`) || !strings.Contains(reason, "choose another separator") {
			t.Errorf("dead-letter reason %q does not name the attribute, the separator and the fix", reason)
		}
	}
	if n := redisDataKeys(t, dst, 0); n != plain+len(twins) {
		t.Errorf("target holds %d keys, want %d", n, plain+len(twins))
	}
	for _, k := range twins {
		h, err := dst.Client.HGetAll(ctx, k[0]+":"+k[1]).Result()
		if err != nil || h["pk"] != k[0] || h["sk"] != k[1] || h["v"] != "twin" {
			t.Errorf("%s:%s = %v, %v; want the item (%q, %q)", k[0], k[1], h, err, k[0], k[1])
		}
	}

	// The fix the reason names: a separator no pk holds copies every item,
	// each under its own key.
	fixed := newTablePipeline(t, table, "--target-redis-addr", dst.Addr, "--target-redis-db", "1", "--target-key-template", "{pk}|{sk}")
	res = stack.Run(ctx, t, append([]string{"backfill"}, fixed.args...)...)
	if res.Code != 0 {
		t.Fatalf("backfill with {pk}|{sk}: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if n := redisDataKeys(t, dst, 1); n != plain+2*len(colliding) {
		t.Errorf("target db 1 holds %d keys, want %d", n, plain+2*len(colliding))
	}
	waitConverged(t, fixed, time.Minute)
}

func TestKeyMapRedisToDynamoDBRulesDeadLetterCollidingKeys(t *testing.T) {
	t.Parallel()
	src := stack.NewRedis(t)
	ctx := testCtx(t, 4*time.Minute)
	hset := func(key, name string) {
		t.Helper()
		if err := src.Client.HSet(ctx, key, "name", name).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// id is a number: only the form DynamoDB stores is a key; the others
	// would write (or delete) the item of the canonical one.
	canonical := []string{"1", "2", "10", "-3", "0.5", "0"}
	otherForms := []string{"01", "1.0", "+1", "1e0", "-0"}
	for _, id := range canonical {
		hset("user:"+id, "user "+id)
	}
	for _, id := range otherForms {
		hset("user:"+id, "impostor "+id)
	}
	// Two S attributes: the first ':' ends userId, so each key is one item.
	orders := map[string][2]string{"order:a:b:c": {"a", "b:c"}, "order:a:b": {"a", "b"}, "order:a::": {"a", ":"}}
	for k := range orders {
		hset(k, k)
	}
	// A key attribute cannot be empty.
	empty := []string{"user:", "order::x", "session:"}
	for _, k := range empty[:2] {
		hset(k, "empty")
	}
	if err := src.Client.Set(ctx, "session:", "t0k", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := src.Client.Set(ctx, "session:s1", "t1k", 0).Err(); err != nil {
		t.Fatal(err)
	}

	p := basePipeline(t, src)
	users, ords, sessions := p.name+"-users", p.name+"-orders", p.name+"-sessions"
	db := dynamoClient(t)
	stack.DropTables(t, db, users, ords, sessions)
	rules := map[string]string{
		"user":    fmt.Sprintf("      - match: \"user:*\"\n        table: %s\n        key: \"user:{id}\"\n        key_types: {id: N}\n", users),
		"order":   fmt.Sprintf("      - match: \"order:*\"\n        table: %s\n        key: \"order:{userId}:{orderId}\"\n", ords),
		"session": fmt.Sprintf("      - match: \"session:*\"\n        table: %s\n        key: \"session:{id}\"\n        value_attribute: token\n", sessions),
	}
	config := func(names ...string) string {
		text := fmt.Sprintf("sink:\n  dynamodb:\n    endpoint: %s\n    create_table: true\n    rules:\n", stack.DynamoDBEndpoint(t))
		for _, n := range names {
			text += rules[n]
		}
		path := filepath.Join(t.TempDir(), "rules.yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	all := p
	all.args = append(append([]string(nil), p.args...), "--config", config("user", "order", "session"))
	res := stack.Run(ctx, t, append([]string{"backfill"}, all.args...)...)
	wantDead := len(otherForms) + len(empty)
	if res.Code != 3 || summaryCount(t, res.Stdout, "dead-lettered") != int64(wantDead) {
		t.Fatalf("backfill: exit %d, want 3 with %d keys dead-lettered\n%s\n%s", res.Code, wantDead, res.Stdout, res.Stderr)
	}
	reasons := deadLetterReasons(t, p.name, wantDead)
	for _, id := range otherForms {
		if r := reasons["user:"+id]; !strings.Contains(r, "key attribute id is a number in non-canonical form "+id+"; DynamoDB stores it as ") {
			t.Errorf("user:%s dead-lettered with %q", id, r)
		}
	}
	for _, k := range empty {
		if r := reasons[k]; !strings.Contains(r, "DynamoDB key attributes cannot be empty") {
			t.Errorf("%s dead-lettered with %q", k, r)
		}
	}

	// Each canonical key holds its own hash, untouched by the other forms.
	items := func(table string) []map[string]types.AttributeValue {
		out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Items
	}
	got := map[string]string{}
	for _, it := range items(users) {
		got[it["id"].(*types.AttributeValueMemberN).Value] = it["name"].(*types.AttributeValueMemberS).Value
	}
	if len(got) != len(canonical) {
		t.Errorf("table %s holds %d items, want %d: %v", users, len(got), len(canonical), got)
	}
	for _, id := range canonical {
		if got[id] != "user "+id {
			t.Errorf("item id=%s holds name %q, want %q", id, got[id], "user "+id)
		}
	}
	gotOrders := map[[2]string]bool{}
	for _, it := range items(ords) {
		gotOrders[[2]string{it["userId"].(*types.AttributeValueMemberS).Value, it["orderId"].(*types.AttributeValueMemberS).Value}] = true
	}
	for k, want := range orders {
		if !gotOrders[want] {
			t.Errorf("%s: no item %q in %s (%v)", k, want, ords, gotOrders)
		}
	}
	if n := len(items(sessions)); n != 1 {
		t.Errorf("table %s holds %d items, want session:s1's", sessions, n)
	}

	// Reconcile reads each order item's Redis key back with the template
	// (the second pass) and finds the keys it came from: no difference.
	onlyOrders := p
	onlyOrders.args = append(append([]string(nil), p.args...), "--config", config("order"), "--include", "order:*", "--exclude", "order::*")
	waitConverged(t, onlyOrders, time.Minute)
}
