package test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// reconcileReport is the part of `reconcile --output json` the tests read.
type reconcileReport struct {
	Compared int64            `json:"compared"`
	Equal    int64            `json:"equal"`
	Counts   map[string]int64 `json:"counts"`
	Samples  map[string][]struct {
		Key    string `json:"key"`
		Detail string `json:"detail"`
	} `json:"samples"`
	Cleared   int64   `json:"cleared_on_recheck"`
	Fraction  float64 `json:"fraction"`
	Bound     float64 `json:"divergence_upper_bound_95"`
	Repaired  int64   `json:"repaired"`
	Remaining int64   `json:"remaining"`
}

// reconcileJSON runs reconcile with --output json and checks its exit code.
func reconcileJSON(t *testing.T, p pipelineArgs, wantCode int, extra ...string) reconcileReport {
	t.Helper()
	args := append(append([]string{"reconcile", "--output", "json", "--recheck-delay", "300ms"}, extra...), p.args...)
	res := stack.Run(testCtx(t, 3*time.Minute), t, args...)
	if res.Code != wantCode {
		t.Fatalf("reconcile %v exited %d, want %d\n%s\n%s", extra, res.Code, wantCode, res.Stdout, res.Stderr)
	}
	var rep reconcileReport
	if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
		t.Fatalf("reconcile output is not a report: %v\n%s", err, res.Stdout)
	}
	return rep
}

// drift is what a test planted in a target: the key of each kind of
// difference, as reconcile names it.
type drift map[string][]string

// checkFound fails t unless rep found exactly the planted drift.
func checkFound(t *testing.T, rep reconcileReport, planted drift) {
	t.Helper()
	for kind, keys := range planted {
		if rep.Counts[kind] != int64(len(keys)) {
			t.Errorf("%s: %d found, %d planted (%v); report %+v", kind, rep.Counts[kind], len(keys), keys, rep)
			continue
		}
		for _, k := range keys {
			found := false
			for _, s := range rep.Samples[kind] {
				found = found || s.Key == k
			}
			if !found {
				t.Errorf("%s: key %q not among the samples %v", kind, k, rep.Samples[kind])
			}
		}
	}
	for kind, n := range rep.Counts {
		if _, ok := planted[kind]; !ok && n != 0 && kind != "not-comparable" {
			t.Errorf("%d unexpected %s differences: %v", n, kind, rep.Samples[kind])
		}
	}
}

// proveReconcile is the common course: the copy matches (exit 0), the
// planted drift is found with the right keys (exit 4), --repair fixes all
// of it through the pipeline (exit 0), and a last run finds nothing.
func proveReconcile(t *testing.T, p pipelineArgs, plant func() drift) {
	t.Helper()
	if rep := reconcileJSON(t, p, 0); rep.Compared == 0 || rep.Equal != rep.Compared {
		t.Fatalf("identical stores: %+v", rep)
	}
	planted := plant()
	n := 0
	for _, keys := range planted {
		n += len(keys)
	}
	checkFound(t, reconcileJSON(t, p, 4), planted)
	rep := reconcileJSON(t, p, 0, "--repair", "--delete-extra")
	checkFound(t, rep, planted)
	if rep.Repaired != int64(n) || rep.Remaining != 0 {
		t.Fatalf("repair: %d repaired (want %d), %d remaining", rep.Repaired, n, rep.Remaining)
	}
	if rep := reconcileJSON(t, p, 0); rep.Equal != rep.Compared {
		t.Fatalf("after the repair: %+v", rep)
	}
}

// redisKeys finds, in the seeded source, a string key without expiry, a
// key with an expiry and any other key.
func redisKeys(t *testing.T, cl *goredis.Client) (str, ttl, other string) {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	iter := cl.Scan(ctx, 0, "", 500).Iterator()
	for iter.Next(ctx) && (str == "" || ttl == "" || other == "") {
		k := iter.Val()
		typ := cl.Type(ctx, k).Val()
		d := cl.PTTL(ctx, k).Val()
		switch {
		case ttl == "" && d > time.Hour && typ == "string":
			ttl = k
		case str == "" && d < 0 && typ == "string":
			str = k
		case other == "" && d < 0 && typ == "hash":
			other = k
		}
	}
	if str == "" || ttl == "" || other == "" {
		t.Fatalf("the seeded source lacks the keys the test needs: %q %q %q", str, ttl, other)
	}
	return str, ttl, other
}

func seedRedisSource(t *testing.T) *stack.Redis {
	t.Helper()
	return seedFarExpiries(t, datagen.Spec{Keys: 3000, Seed: 71, TTLFraction: 0.3, MaxElements: 5})
}

// seedFarExpiries starts a private Redis and seeds it with spec, every expiry
// moved three hours ahead: far enough not to pass during a test.
func seedFarExpiries(t *testing.T, spec datagen.Spec) *stack.Redis {
	t.Helper()
	src := stack.NewRedis(t)
	if _, err := datagen.Seed(testCtx(t, time.Minute), src.Client, spec); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, time.Minute)
	iter := src.Client.Scan(ctx, 0, "", 500).Iterator()
	for iter.Next(ctx) {
		if src.Client.PTTL(ctx, iter.Val()).Val() > 0 {
			must(t, src.Client.Expire(ctx, iter.Val(), 3*time.Hour).Err())
		}
	}
	must(t, iter.Err())
	return src
}

func backfill(t *testing.T, p pipelineArgs) {
	t.Helper()
	if res := stack.Run(testCtx(t, 5*time.Minute), t, append([]string{"backfill"}, p.args...)...); res.Code != 0 {
		t.Fatalf("backfill exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
}

// TestReconcileRepairsRedisToRedis plants every kind of drift in a Redis
// target.
func TestReconcileRepairsRedisToRedis(t *testing.T) {
	t.Parallel()
	src, dst := seedRedisSource(t), stack.NewRedis(t)
	p := newRedisPipeline(t, src, dst)
	backfill(t, p)
	proveReconcile(t, p, func() drift {
		ctx := testCtx(t, time.Minute)
		str, ttl, other := redisKeys(t, src.Client)
		miss := "" // a key that is neither of the others
		iter := src.Client.Scan(ctx, 0, "", 100).Iterator()
		for iter.Next(ctx) && miss == "" {
			if k := iter.Val(); k != str && k != ttl && k != other {
				miss = k
			}
		}
		d := dst.Client
		must(t, d.Del(ctx, miss).Err())
		must(t, d.Set(ctx, "drift:extra", "x", 0).Err())
		must(t, d.Set(ctx, str, "drifted", 0).Err())
		must(t, d.Expire(ctx, ttl, 10*time.Hour).Err())
		must(t, d.Del(ctx, other).Err())
		must(t, d.RPush(ctx, other, "a", "b").Err())
		return drift{"missing": {miss}, "extra": {"drift:extra"}, "different": {str, other}, "ttl": {ttl}}
	})
}

// TestReconcileRepairsRedisToDynamoDB plants every kind of drift in the
// table of a Redis → DynamoDB pipeline.
func TestReconcileRepairsRedisToDynamoDB(t *testing.T) {
	t.Parallel()
	stack.LoadDynamoDB(t, 1)
	src := seedRedisSource(t)
	p := newPipeline(t, src, "--create-table", "--key-type", "B")
	backfill(t, p)
	db := dynamoClient(t)
	proveReconcile(t, p, func() drift {
		ctx := testCtx(t, time.Minute)
		str, ttl, other := redisKeys(t, src.Client)
		get := func(k string) map[string]types.AttributeValue {
			out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(p.table), ConsistentRead: aws.Bool(true),
				Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberB{Value: []byte(k)}}})
			must(t, err)
			if out.Item == nil {
				t.Fatalf("no item for %q", k)
			}
			return out.Item
		}
		put := func(item map[string]types.AttributeValue) {
			_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(p.table), Item: item})
			must(t, err)
		}
		// missing: the item of the hash key is gone (no tombstone).
		_, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(p.table),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberB{Value: []byte(other)}}})
		must(t, err)
		// extra: a copy of a string's item under a key the source lacks.
		extra := get(str)
		extra["pk"] = &types.AttributeValueMemberB{Value: []byte("drift:extra")}
		put(extra)
		// different value: the string's bytes changed.
		changed := get(str)
		changed["value"] = &types.AttributeValueMemberB{Value: []byte("drifted")}
		put(changed)
		// different expiry.
		late := get(ttl)
		late["expire_at"] = &types.AttributeValueMemberN{Value: "4102444800"}
		put(late)
		// wrong type: another string's item now holds a list.
		wrong := ""
		iter := src.Client.Scan(ctx, 0, "", 100).Iterator()
		for iter.Next(ctx) && wrong == "" {
			k := iter.Val()
			if k != str && k != ttl && k != other && src.Client.Type(ctx, k).Val() == "string" && src.Client.PTTL(ctx, k).Val() < 0 {
				wrong = k
			}
		}
		item := get(wrong)
		item["cutover_type"] = &types.AttributeValueMemberS{Value: "list"}
		item["value"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberB{Value: []byte("a")}}}
		put(item)
		return drift{"missing": {other}, "extra": {"drift:extra"}, "different": {str, wrong}, "ttl": {ttl}}
	})
}

// ordersPipeline copies a seeded orders table with backfill; extra names
// the target.
func ordersPipeline(t *testing.T, extra ...string) (*datagen.Orders, pipelineArgs) {
	t.Helper()
	db := dynamoClient(t)
	o := newOrders(t, db, 1500)
	p := newTablePipeline(t, o.Table, extra...)
	backfill(t, p)
	return o, p
}

// orderKey is reconcile's name for order i: its item key.
func orderKey(o *datagen.Orders, i int) string {
	k := o.Key(i)
	return string(pipeline.EncodeItemKey([]pipeline.KeyAttr{
		{Name: "userId", Value: pipeline.Attr{Kind: pipeline.AttrS, S: k["userId"].(*types.AttributeValueMemberS).Value}},
		{Name: "orderId", Value: pipeline.Attr{Kind: pipeline.AttrN, N: k["orderId"].(*types.AttributeValueMemberN).Value}},
	}))
}

// orderWithExpiry is the index of an order that has an expiry.
func orderWithExpiry(t *testing.T, db *dynamodb.Client, o *datagen.Orders) int {
	t.Helper()
	for i := 10; i < o.Items; i++ {
		out, err := db.GetItem(testCtx(t, time.Minute), &dynamodb.GetItemInput{TableName: aws.String(o.Table), Key: o.Key(i)})
		must(t, err)
		if _, ok := out.Item["expires"]; ok {
			return i
		}
	}
	t.Fatal("no order has an expiry")
	return 0
}

// TestReconcileRepairsTableToRedis plants every kind of drift in the
// Redis hashes of a DynamoDB → Redis pipeline.
func TestReconcileRepairsTableToRedis(t *testing.T) {
	t.Parallel()
	stack.LoadDynamoDB(t, 1)
	dst := stack.NewRedis(t)
	o, p := ordersPipeline(t, "--target-redis-addr", dst.Addr, "--target-key-template", "order:{userId}:{orderId}")
	db := dynamoClient(t)
	proveReconcile(t, p, func() drift {
		ctx := testCtx(t, time.Minute)
		name := func(i int) string {
			k := o.Key(i)
			return "order:" + k["userId"].(*types.AttributeValueMemberS).Value + ":" + k["orderId"].(*types.AttributeValueMemberN).Value
		}
		exp := orderWithExpiry(t, db, o)
		d := dst.Client
		must(t, d.Del(ctx, name(1)).Err())
		must(t, d.HSet(ctx, "order:nobody:7", "status", "x").Err())
		must(t, d.HSet(ctx, name(2), "status", "drifted").Err())
		must(t, d.ExpireAt(ctx, name(exp), time.Now().Add(30*time.Hour)).Err())
		must(t, d.Del(ctx, name(3)).Err())
		must(t, d.Set(ctx, name(3), "a string", 0).Err())
		extra := string(pipeline.EncodeItemKey([]pipeline.KeyAttr{
			{Name: "userId", Value: pipeline.Attr{Kind: pipeline.AttrS, S: "nobody"}},
			{Name: "orderId", Value: pipeline.Attr{Kind: pipeline.AttrN, N: "7"}},
		}))
		return drift{"missing": {orderKey(o, 1)}, "extra": {extra}, "different": {orderKey(o, 2), orderKey(o, 3)}, "ttl": {orderKey(o, exp)}}
	})
}

// TestReconcileRepairsTableToTable plants drift in the copy of a table.
// An item's expiry is one of its attributes here, so a changed expiry is
// a changed attribute.
func TestReconcileRepairsTableToTable(t *testing.T) {
	t.Parallel()
	stack.LoadDynamoDB(t, 1)
	db := dynamoClient(t)
	var copyTable string
	o, p := func() (*datagen.Orders, pipelineArgs) {
		o := newOrders(t, db, 1500)
		copyTable = o.Table + "-copy"
		p := newTablePipeline(t, o.Table, "--dynamodb-endpoint", stack.DynamoDBEndpoint(t), "--create-table", "--dynamodb-table", copyTable)
		backfill(t, p)
		return o, p
	}()
	proveReconcile(t, p, func() drift {
		ctx := testCtx(t, time.Minute)
		// set changes one attribute (by name: status and total are
		// reserved words).
		set := func(i int, attr string, v types.AttributeValue) {
			_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(copyTable), Key: o.Key(i),
				UpdateExpression: aws.String("SET #a = :v"), ExpressionAttributeNames: map[string]string{"#a": attr},
				ExpressionAttributeValues: map[string]types.AttributeValue{":v": v}})
			must(t, err)
		}
		_, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(copyTable), Key: o.Key(1)})
		must(t, err)
		_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(copyTable), Item: map[string]types.AttributeValue{
			"userId": &types.AttributeValueMemberS{Value: "nobody"}, "orderId": &types.AttributeValueMemberN{Value: "7"},
			"status": &types.AttributeValueMemberS{Value: "x"},
		}})
		must(t, err)
		set(2, "status", &types.AttributeValueMemberS{Value: "drifted"})
		exp := orderWithExpiry(t, db, o)
		set(exp, "expires", &types.AttributeValueMemberN{Value: "4102444800"})
		set(3, "total", &types.AttributeValueMemberS{Value: "12.50"}) // N became S
		extra := string(pipeline.EncodeItemKey([]pipeline.KeyAttr{
			{Name: "userId", Value: pipeline.Attr{Kind: pipeline.AttrS, S: "nobody"}},
			{Name: "orderId", Value: pipeline.Attr{Kind: pipeline.AttrN, N: "7"}},
		}))
		return drift{"missing": {orderKey(o, 1)}, "extra": {extra}, "different": {orderKey(o, 2), orderKey(o, exp), orderKey(o, 3)}}
	})
}

// TestReconcileUnderWritesHasNoFalseDifferences runs reconcile while a
// writer keeps changing the source and replicate keeps the target up to
// date: changes in flight clear on re-check, none is reported. A sample
// states its confidence; the continuous mode serves the divergence as a
// metric.
func TestReconcileUnderWritesHasNoFalseDifferences(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	if _, err := datagen.Seed(testCtx(t, time.Minute), src.Client, datagen.Spec{Keys: 5000, Seed: 72}); err != nil {
		t.Fatal(err)
	}
	p := newRedisPipeline(t, src, dst)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	defer proc.Stop()
	waitConverged(t, p, 2*time.Minute)
	w := &datagen.Writer{Keys: 3000, Seed: 8, Prefix: "w:", Rate: 2000}
	stop := writeWhile(t, src, w)
	defer stop()
	waitOps(t, w, 4000, time.Minute)
	// Each run exits 0: no difference reported. That shows re-checks
	// clear changes in flight only if some were in flight: with keys
	// changing 2,000 times a second while replicate follows, a full compare
	// sees some differ at first; if none did, the runs proved nothing.
	var cleared int64
	for range 3 {
		rep := reconcileJSON(t, p, 0, "--recheck-delay", "1s")
		cleared += rep.Cleared
		if rep.Compared < 5000 {
			t.Fatalf("compared only %d keys", rep.Compared)
		}
	}
	if cleared == 0 {
		t.Fatalf("no difference cleared on re-check over three runs while the writer made %d operations: no change was in flight, so re-checking was not tested", w.Ops())
	}
	t.Logf("%d differences cleared on re-check over three runs", cleared)

	rep := reconcileJSON(t, p, 0, "--percent", "20")
	if rep.Fraction != 0.2 || rep.Compared < 500 || rep.Compared > 2500 || rep.Bound <= 0 || rep.Bound > 0.01 {
		t.Fatalf("a 20%% sample: %+v", rep)
	}

	// Continuous mode: rounds every second, the divergence as a metric.
	addr := freeAddr(t)
	cont := stack.Start(t, nil, append([]string{"reconcile", "--sample", "1000", "--every", "1s", "--metrics-addr", addr}, p.args...)...)
	defer cont.Stop()
	deadline := time.Now().Add(time.Minute)
	for {
		body := httpGet(t, "http://"+addr+"/metrics")
		if metricValue(body, "cutover_reconcile_rounds_total") >= 2 {
			if metricValue(body, "cutover_reconcile_divergence_ratio") != 0 {
				t.Fatalf("continuous reconcile reports divergence:\n%s", body)
			}
			break
		}
		if time.Now().After(deadline) {
			out, errOut := cont.Output()
			t.Fatalf("no two rounds within a minute:\n%s\n%s\n%s", body, out, errOut)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// freeAddr is a free loopback address for a server the test starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	must(t, ln.Close())
	return addr
}

// httpGet returns a page's body ("" while the server is not up yet).
func httpGet(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t, 10*time.Second), http.MethodGet, url, nil)
	must(t, err)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
