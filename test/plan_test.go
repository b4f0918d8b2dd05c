package test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// planOutput is the part of `cutover plan --output json` the tests read.
type planOutput struct {
	Ready     bool `json:"ready"`
	Preflight []struct {
		Check, Status, Detail string
	} `json:"preflight"`
	Estimate struct {
		Total       int64            `json:"total_keys"`
		Sampled     int64            `json:"sampled_keys"`
		Full        bool             `json:"full_scan"`
		ByType      map[string]int64 `json:"by_type"`
		Carried     int64            `json:"carried"`
		Chunked     int64            `json:"chunked"`
		RedisMemory int64            `json:"redis_memory_bytes"`
		NotCarried  int64            `json:"not_carried"`
		Upper95     float64          `json:"not_carried_upper_95"`
		Reasons     []struct {
			Reason    string `json:"reason"`
			Estimated int64  `json:"estimated"`
			Example   string `json:"example"`
		} `json:"not_carried_reasons"`
		WriteUnits int64 `json:"write_units"`
		KafkaBytes int64 `json:"kafka_bytes"`
	} `json:"estimate"`
	Projection struct {
		Writes  int64   `json:"writes"`
		Cost    float64 `json:"cost_usd"`
		Suggest *struct {
			Workers int64 `json:"sink_workers"`
			PreWarm int64 `json:"pre_warm_write_units_per_second"`
		} `json:"suggest"`
	} `json:"projection"`
}

func runPlan(t *testing.T, args ...string) (planOutput, stack.Result) {
	t.Helper()
	res := stack.Run(testCtx(t, 5*time.Minute), t, append([]string{"plan", "--output", "json"}, args...)...)
	var out planOutput
	if res.Code == 0 || res.Code == 5 {
		if err := json.Unmarshal([]byte(res.Stdout), &out); err != nil {
			t.Fatalf("plan output is not JSON: %v\n%s\n%s", err, res.Stdout, res.Stderr)
		}
	}
	return out, res
}

// TestPlanCountsWhatBackfillDoes plans a Redis → DynamoDB migration of a
// known dataset — seeded keys (some with binary keys, which an S key
// attribute cannot hold), three strings whose items are over 400 KB and
// a stream, which has no DynamoDB form — then runs the backfill: a full
// plan must count exactly the keys the backfill dead-letters and the
// ones it applies, and change nothing on the way.
func TestPlanCountsWhatBackfillDoes(t *testing.T) {
	stack.LoadDynamoDB(t, 1)
	r := stack.NewRedis(t)
	sum := seedRedis(t, r, datagen.Spec{Keys: 3000, Seed: 20, Prefix: "plan:", TTLFraction: 0.1, BinaryFraction: 0.02})
	ctx := testCtx(t, 10*time.Minute)
	big := strings.Repeat("x", 500_000)
	for _, k := range []string{"big:1", "big:2", "big:3"} {
		must(t, r.Client.Set(ctx, k, big, 0).Err())
	}
	must(t, r.Client.XAdd(ctx, &goredis.XAddArgs{Stream: "events:1", Values: []string{"a", "1"}}).Err())
	keys := int64(3000 + 4)
	wantNotCarried := int64(sum.Binary + 3 + 1)
	p := newPipeline(t, r, "--create-table")

	full, res := runPlan(t, append([]string{"--full"}, p.args...)...)
	if res.Code != 0 || !full.Ready {
		t.Fatalf("plan --full: exit %d, want 0\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	e := full.Estimate
	if !e.Full || e.Total != keys || e.Sampled != keys {
		t.Errorf("plan --full read %d of %d keys, want %d", e.Sampled, e.Total, keys)
	}
	if e.NotCarried != wantNotCarried || e.Carried != keys-wantNotCarried {
		t.Errorf("plan --full: %d carried, %d not carried; want %d and %d", e.Carried, e.NotCarried, keys-wantNotCarried, wantNotCarried)
	}
	reasons := map[string]int64{}
	for _, r := range e.Reasons {
		reasons[r.Reason] = r.Estimated
	}
	if reasons["dynamodb-item-over-400kb"] != 3 || reasons["unmappable"] != int64(sum.Binary+1) {
		t.Errorf("reasons %v: want 3 items over 400 KB and %d unmappable (binary keys and the stream)", reasons, sum.Binary+1)
	}
	// Read-only: no table, no topic.
	if _, err := dynamoClient(t).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &p.table}); err == nil {
		t.Errorf("plan created table %s", p.table)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers(t)...))
	must(t, err)
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, "cutover."+p.name)
	must(t, err)
	if topics.Has("cutover." + p.name) {
		t.Errorf("plan created topic cutover.%s", p.name)
	}

	// To finish within 100 ms, a new table (4,000 write units/s at once)
	// must be pre-warmed.
	sampled, res := runPlan(t, append([]string{"--sample", "500", "--finish-within", "100ms"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("plan --sample 500: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	s := sampled.Estimate
	t.Logf("plan --sample 500: read %d keys, estimates %d keys, %d not carried (95%% bound %.2f%%), %d write units, %d bytes into kafka",
		s.Sampled, s.Total, s.NotCarried, 100*s.Upper95, s.WriteUnits, s.KafkaBytes)
	if s.Total != keys || s.Sampled < 250 || s.Sampled > 1000 {
		t.Errorf("plan --sample 500 read %d keys and scaled to %d; want about 500 and %d (DBSIZE)", s.Sampled, s.Total, keys)
	}
	if sg := sampled.Projection.Suggest; sg == nil || sg.Workers < 2 || sg.PreWarm < 20_000 {
		t.Errorf("--finish-within 100ms: suggestion %+v, want several workers and a pre-warmed table", sg)
	}

	start := time.Now()
	res = stack.Run(ctx, t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 3 {
		t.Fatalf("backfill: exit %d, want 3 (dead-lettered)\n%s\n%s", res.Code, res.Stdout, stack.Tail(res.Stderr, 20))
	}
	dead := summaryCount(t, res.Stdout, "dead-lettered")
	applied := summaryCount(t, res.Stdout, "events applied")
	t.Logf("backfill in %v: %d applied, %d dead-lettered; plan --full said %d carried (%d write units, $%.6f), %d not carried",
		time.Since(start).Round(time.Millisecond), applied, dead, e.Carried, e.WriteUnits, full.Projection.Cost, e.NotCarried)
	if dead != e.NotCarried || applied != e.Carried {
		t.Errorf("backfill applied %d and dead-lettered %d; plan --full said %d and %d", applied, dead, e.Carried, e.NotCarried)
	}
}

// TestPlanPreflightFailures provokes preflight failures: each is named
// with its fix, and plan exits 5.
func TestPlanPreflightFailures(t *testing.T) {
	stack.LoadDynamoDB(t, 1)
	ctx := testCtx(t, 5*time.Minute)

	t.Run("stream off", func(t *testing.T) {
		db := dynamoClient(t)
		o := newOrders(t, db, 20, true)
		p := newTablePipeline(t, o.Table, "--dynamodb-endpoint", stack.DynamoDBEndpoint(t), "--dynamodb-table", o.Table+"-copy", "--create-table")
		out, res := runPlan(t, p.args...)
		if res.Code != 5 || out.Ready {
			t.Fatalf("plan of a table without a stream: exit %d, want 5\n%s\n%s", res.Code, res.Stdout, res.Stderr)
		}
		if !strings.Contains(res.Stdout, "DynamoDB Streams is off on table "+o.Table) || !strings.Contains(res.Stdout, "StreamViewType=NEW_AND_OLD_IMAGES") {
			t.Errorf("the failure does not name the stream and its fix:\n%s", res.Stdout)
		}
		// The rest is still planned: the 20 items.
		if out.Estimate.Total != 20 || out.Estimate.Carried != 20 {
			t.Errorf("estimate %+v, want 20 items carried", out.Estimate)
		}
	})

	t.Run("topic max.message.bytes too small", func(t *testing.T) {
		r := stack.NewRedis(t)
		seedNumbered(t, r.Client, "k:", 10)
		p := newPipeline(t, r, "--create-table")
		cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers(t)...))
		must(t, err)
		defer cl.Close()
		small := "100000"
		if _, err := kadm.NewClient(cl).CreateTopic(ctx, 4, -1, map[string]*string{"max.message.bytes": &small}, "cutover."+p.name); err != nil {
			t.Fatal(err)
		}
		out, res := runPlan(t, p.args...)
		if res.Code != 5 || out.Ready {
			t.Fatalf("plan onto a topic with a small max.message.bytes: exit %d, want 5\n%s\n%s", res.Code, res.Stdout, res.Stderr)
		}
		if !strings.Contains(res.Stdout, "max.message.bytes is 100000, below kafka.max_record_bytes 1000000") ||
			!strings.Contains(res.Stdout, "--add-config max.message.bytes=1000000") {
			t.Errorf("the failure does not name the setting and its fix:\n%s", res.Stdout)
		}
	})

	t.Run("user may not set keyspace notifications", func(t *testing.T) {
		// The documented minimal source user without +config|set: on a
		// server whose notifications are off, replicate could not turn
		// them on.
		out, res, r := planAsUserWithout(t, "+config|set")
		if !strings.Contains(res.Stdout, "keyspace notifications are off on redis "+r.Addr) ||
			!strings.Contains(res.Stdout, `set notify-keyspace-events to include \"Eg$lshzxetd\"`) {
			t.Errorf("the failure does not name the setting and its fix:\n%s", res.Stdout)
		}
		if out.Estimate.Carried != 10 {
			t.Errorf("the user may read: every key is still planned, got %+v", out.Estimate)
		}
	})

	t.Run("user may not run the read", func(t *testing.T) {
		// Without +time the read script fails on every key: the snapshot
		// would retry it for two minutes; plan says so at once.
		_, res, r := planAsUserWithout(t, "+time")
		if !strings.Contains(res.Stdout, "source read "+r.Addr) || !strings.Contains(res.Stdout, "the source user needs the ACL in docs/redis.md") {
			t.Errorf("the failure does not name the read and its fix:\n%s", res.Stdout)
		}
	})

	t.Run("target is a replica", func(t *testing.T) {
		src, master := stack.NewRedis(t), stack.NewRedis(t)
		host, port, _ := strings.Cut(master.Addr, ":")
		replica := stack.NewRedis(t, "--replicaof", host, port)
		seedNumbered(t, src.Client, "k:", 10)
		p := newRedisPipeline(t, src, replica)
		_, res := runPlan(t, p.args...)
		if res.Code != 5 || !strings.Contains(res.Stdout, "redis "+replica.Addr+" is a replica") || !strings.Contains(res.Stdout, "at the master") {
			t.Errorf("plan onto a replica: exit %d, want 5 with the fix\n%s\n%s", res.Code, res.Stdout, res.Stderr)
		}
	})

	t.Run("configuration mistake", func(t *testing.T) {
		res := stack.Run(ctx, t, "plan", "--sample", "0", "--dynamodb-table", "x")
		if res.Code != 2 || !strings.Contains(res.Stderr, "--sample: must be positive") {
			t.Errorf("plan --sample 0: exit %d, want 2\n%s", res.Code, res.Stderr)
		}
	})
}

// TestPlanRedisToRedis plans a Redis → Redis copy of seeded keys, a big
// hash that travels in pieces and a stream (both carried to a Redis
// target), then runs it: every key carried, the writes within the
// estimate of the big hash's pieces, and the target's memory near the
// estimate.
func TestPlanRedisToRedis(t *testing.T) {
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	seedRedis(t, src, datagen.Spec{Keys: 2000, Seed: 21, Prefix: "plan:", TTLFraction: 0.1, BinaryFraction: 0.02})
	ctx := testCtx(t, 5*time.Minute)
	big := make([]any, 0, 30_000)
	for i := range 15_000 {
		big = append(big, "f"+strconv.Itoa(i), "v"+strconv.Itoa(i))
	}
	must(t, src.Client.HSet(ctx, "big:hash", big...).Err())
	must(t, src.Client.XAdd(ctx, &goredis.XAddArgs{Stream: "events:1", Values: []string{"a", "1"}}).Err())
	keys := int64(2000 + 2)
	p := newRedisPipeline(t, src, dst)

	plan, res := runPlan(t, append([]string{"--full"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("plan --full: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	e := plan.Estimate
	if e.Carried != keys || e.NotCarried != 0 || e.Chunked != 1 {
		t.Errorf("plan --full: %d carried, %d not, %d in pieces; want %d, 0, 1", e.Carried, e.NotCarried, e.Chunked, keys)
	}
	res = stack.Run(ctx, t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("backfill: exit %d\n%s\n%s", res.Code, res.Stdout, stack.Tail(res.Stderr, 20))
	}
	applied := summaryCount(t, res.Stdout, "events applied")
	used := keysMemory(t, dst.Client)
	t.Logf("backfill applied %d events; plan said %d writes. Target keys take %d bytes (MEMORY USAGE, data and version keys); plan said %d",
		applied, plan.Projection.Writes, used, e.RedisMemory)
	if d := applied - plan.Projection.Writes; d < -5 || d > 5 {
		t.Errorf("backfill applied %d events, plan said %d writes", applied, plan.Projection.Writes)
	}
	if r := float64(e.RedisMemory) / float64(used); r < 0.75 || r > 1.33 {
		t.Errorf("plan estimated %d bytes of target memory, the target holds %d", e.RedisMemory, used)
	}
}

// TestPlanTableToTable plans a DynamoDB → DynamoDB copy read as items:
// every item carried, at least one write unit each.
func TestPlanTableToTable(t *testing.T) {
	stack.LoadDynamoDB(t, 1)
	o := newOrders(t, dynamoClient(t), 200)
	p := newTablePipeline(t, o.Table, "--dynamodb-endpoint", stack.DynamoDBEndpoint(t), "--dynamodb-table", o.Table+"-copy", "--create-table")
	e := planThenBackfill(t, p).Estimate
	if e.Carried != 200 || e.NotCarried != 0 || e.ByType["item"] != 200 || e.WriteUnits < 200 {
		t.Errorf("plan --full: %+v; want 200 items carried, at least a write unit each", e)
	}
	t.Logf("plan --full: %d items, %d write units, %d bytes into kafka", e.Carried, e.WriteUnits, e.KafkaBytes)
}

// TestPlanTableToRedis plans a DynamoDB → Redis copy through a key
// template: every item carried, and the target's memory near the
// estimate.
func TestPlanTableToRedis(t *testing.T) {
	stack.LoadDynamoDB(t, 1)
	o := newOrders(t, dynamoClient(t), 100)
	dst := stack.NewRedis(t)
	p := newTablePipeline(t, o.Table, "--target-redis-addr", dst.Addr, "--target-key-template", "order:{userId}:{orderId}")
	e := planThenBackfill(t, p).Estimate
	if e.Carried != 100 || e.NotCarried != 0 {
		t.Errorf("plan --full: %+v; want 100 items carried", e)
	}
	used := keysMemory(t, dst.Client)
	t.Logf("plan --full: %d items, about %d bytes of Redis memory; the target's keys take %d (MEMORY USAGE)", e.Carried, e.RedisMemory, used)
	if r := float64(e.RedisMemory) / float64(used); r < 0.7 || r > 1.4 {
		t.Errorf("plan estimated %d bytes of target memory, the target holds %d", e.RedisMemory, used)
	}
}

// planThenBackfill runs plan --full of p, then its backfill, which must
// exit 0 and apply one event per key the plan carries; it returns the
// plan.
func planThenBackfill(t *testing.T, p pipelineArgs) planOutput {
	t.Helper()
	plan, res := runPlan(t, append([]string{"--full"}, p.args...)...)
	if res.Code != 0 || !plan.Ready {
		t.Fatalf("plan --full: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	res = stack.Run(testCtx(t, 5*time.Minute), t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("backfill: exit %d\n%s\n%s", res.Code, res.Stdout, stack.Tail(res.Stderr, 20))
	}
	if applied := summaryCount(t, res.Stdout, "events applied"); applied != plan.Projection.Writes {
		t.Errorf("backfill applied %d events, plan said %d writes", applied, plan.Projection.Writes)
	}
	return plan
}

// keysMemory is the sum of MEMORY USAGE of every key of cl's database.
func keysMemory(t *testing.T, cl *goredis.Client) int64 {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	var used int64
	iter := cl.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		n, err := cl.MemoryUsage(ctx, iter.Val()).Result()
		must(t, err)
		used += n
	}
	must(t, iter.Err())
	return used
}

// aclWithout is the documented minimal source user's ACL (docs/redis.md),
// password s3cret, without one of its rules.
func aclWithout(t *testing.T, rule string) []any {
	t.Helper()
	acl := readmeACL(t)
	for i, a := range acl {
		switch a {
		case ">password":
			acl[i] = ">s3cret"
		case rule:
			acl[i] = "-" + strings.TrimPrefix(rule, "+")
		}
	}
	return acl
}

// planAsUserWithout plans ten keys of a new Redis as the documented
// minimal source user without one rule; plan must exit 5.
func planAsUserWithout(t *testing.T, rule string) (planOutput, stack.Result, *stack.Redis) {
	t.Helper()
	r := stack.NewRedis(t)
	seedNumbered(t, r.Client, "k:", 10)
	ctx := testCtx(t, 2*time.Minute)
	must(t, r.Client.Do(ctx, aclWithout(t, rule)...).Err())
	p := newPipeline(t, r, "--create-table", "--redis-username", "cutover")
	res := stack.RunEnv(ctx, t, []string{"REDIS_PASSWORD=s3cret"}, append([]string{"plan", "--output", "json"}, p.args...)...)
	if res.Code != 5 {
		t.Fatalf("plan as a user without %s: exit %d, want 5\n%s\n%s", rule, res.Code, res.Stdout, res.Stderr)
	}
	var out planOutput
	must(t, json.Unmarshal([]byte(res.Stdout), &out))
	return out, res, r
}
