package test

import (
	"encoding/json"
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
		Total      int64            `json:"total_keys"`
		Sampled    int64            `json:"sampled_keys"`
		Full       bool             `json:"full_scan"`
		ByType     map[string]int64 `json:"by_type"`
		Carried    int64            `json:"carried"`
		NotCarried int64            `json:"not_carried"`
		Upper95    float64          `json:"not_carried_upper_95"`
		Reasons    []struct {
			Reason    string `json:"reason"`
			Estimated int64  `json:"estimated"`
			Example   string `json:"example"`
		} `json:"not_carried_reasons"`
		WriteUnits int64 `json:"write_units"`
		KafkaBytes int64 `json:"kafka_bytes"`
	} `json:"estimate"`
	Projection struct {
		Writes int64   `json:"writes"`
		Cost   float64 `json:"cost_usd"`
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

	sampled, res := runPlan(t, append([]string{"--sample", "500"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("plan --sample 500: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	s := sampled.Estimate
	t.Logf("plan --sample 500: read %d keys, estimates %d keys, %d not carried (95%% bound %.2f%%), %d write units, %d bytes into kafka",
		s.Sampled, s.Total, s.NotCarried, 100*s.Upper95, s.WriteUnits, s.KafkaBytes)
	if s.Total != keys || s.Sampled < 250 || s.Sampled > 1000 {
		t.Errorf("plan --sample 500 read %d keys and scaled to %d; want about 500 and %d (DBSIZE)", s.Sampled, s.Total, keys)
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
		r := stack.NewRedis(t)
		seedNumbered(t, r.Client, "k:", 10)
		// The documented minimal source user without +config|set: on a
		// server whose notifications are off, replicate could not turn
		// them on.
		acl := readmeACL(t)
		for i, a := range acl {
			switch a {
			case ">password":
				acl[i] = ">s3cret"
			case "+config|set":
				acl[i] = "-config|set"
			}
		}
		must(t, r.Client.Do(ctx, acl...).Err())
		p := newPipeline(t, r, "--create-table", "--redis-username", "cutover")
		res := stack.RunEnv(ctx, t, []string{"REDIS_PASSWORD=s3cret"}, append([]string{"plan", "--output", "json"}, p.args...)...)
		if res.Code != 5 {
			t.Fatalf("plan as a user who may not set notify-keyspace-events: exit %d, want 5\n%s\n%s", res.Code, res.Stdout, res.Stderr)
		}
		if !strings.Contains(res.Stdout, "keyspace notifications are off on redis "+r.Addr) ||
			!strings.Contains(res.Stdout, `set notify-keyspace-events to include \"Eg$lshzxetd\"`) {
			t.Errorf("the failure does not name the setting and its fix:\n%s", res.Stdout)
		}
		var out planOutput
		must(t, json.Unmarshal([]byte(res.Stdout), &out))
		if out.Estimate.Carried != 10 {
			t.Errorf("the user may read: every key is still planned, got %+v", out.Estimate)
		}
	})

	t.Run("configuration mistake", func(t *testing.T) {
		res := stack.Run(ctx, t, "plan", "--sample", "0", "--dynamodb-table", "x")
		if res.Code != 2 || !strings.Contains(res.Stderr, "--sample: must be positive") {
			t.Errorf("plan --sample 0: exit %d, want 2\n%s", res.Code, res.Stderr)
		}
	})
}
