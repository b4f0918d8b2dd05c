package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"gopkg.in/yaml.v3"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// Every example configuration of deploy/examples runs end to end: the
// file as shipped, with only what names the test's own resources changed
// (addresses, table, topic and pipeline names, the checkpoint directory),
// and two settings the local stack cannot honour as written: its Kafka has
// one broker (replication_factor 3 becomes 1), and tests run side by side
// (a fixed metrics_addr port becomes a free one). ${VAR}s stay in the file
// and come from the environment, as they would in production. Each case
// seeds a small dataset, then `cutover backfill` and `cutover reconcile`
// must both exit 0, reconcile having compared every key the example's
// filters take.

// exampleCase points one example at a test's resources.
type exampleCase struct {
	// env holds the example's ${VAR}s.
	env []string
	// set maps a dotted path in the file (list items as name[i]) to its
	// new value; missing keys are added.
	set map[string]any
	// compared is how many source keys reconcile must compare.
	compared int64
}

// exampleCases prepares each example's resources and data, by file name.
var exampleCases = map[string]func(t *testing.T) exampleCase{
	"demo.yaml": func(t *testing.T) exampleCase {
		src := stack.NewRedis(t)
		seedRedis(t, src, datagen.Spec{Keys: 300, Seed: 19, TTLFraction: 0.1, BinaryFraction: 0.05})
		name := exampleName(t)
		stack.DropTables(t, dynamoClient(t), name)
		return exampleCase{compared: 300, set: map[string]any{
			"name":                   name,
			"source.redis.addr":      src.Addr,
			"kafka.brokers":          stack.KafkaBrokers(t),
			"sink.dynamodb.table":    name,
			"sink.dynamodb.endpoint": stack.DynamoDBEndpoint(t),
			"checkpoint.dir":         t.TempDir(),
		}}
	},
	"redis-to-redis.yaml": func(t *testing.T) exampleCase {
		src := stack.NewRedis(t, "--requirepass", "source-secret")
		dst := stack.NewRedis(t, "--requirepass", "target-secret")
		seedRedis(t, src, datagen.Spec{Keys: 300, Seed: 20, TTLFraction: 0.1, BinaryFraction: 0.05})
		return exampleCase{compared: 300,
			env: append(redisEnv(src), "KAFKA_BOOTSTRAP="+strings.Join(stack.KafkaBrokers(t), ","),
				"TARGET_REDIS_ADDR="+dst.Addr, "TARGET_REDIS_PASSWORD=target-secret"),
			set: map[string]any{
				"name":                     exampleName(t),
				"kafka.replication_factor": 1,
				"checkpoint.dir":           t.TempDir(),
				"metrics_addr":             "127.0.0.1:0",
			}}
	},
	"redis-to-dynamodb.yaml": func(t *testing.T) exampleCase {
		// The production-shaped one: Kafka over TLS with SCRAM-SHA-512,
		// include and exclude patterns, a types filter.
		src := stack.NewRedis(t, "--requirepass", "source-secret")
		sum := seedRedis(t, src, datagen.Spec{Keys: 300, Seed: 21, Prefix: "user:", TTLFraction: 0.1})
		seedRedis(t, src, datagen.Spec{Keys: 50, Seed: 22, Prefix: "cache:"})
		for i := range 20 {
			must(t, src.Client.Set(testCtx(t, time.Minute), fmt.Sprintf("user:%d:lock", i), "held", 0).Err())
		}
		brokers, ca := stack.KafkaSASL(t)
		name := exampleName(t)
		createTable(t, dynamoClient(t), name, keyAttr{"pk", types.ScalarAttributeTypeS})
		return exampleCase{compared: int64(sum.ByType["hash"] + sum.ByType["string"]),
			env: append(redisEnv(src), "KAFKA_BOOTSTRAP="+strings.Join(brokers, ","),
				"KAFKA_SASL_PASSWORD="+stack.KafkaSASLPassword),
			set: map[string]any{
				"name":                     name,
				"kafka.topic":              "cutover." + name,
				"kafka.dead_letter_topic":  "cutover." + name + ".dlq",
				"kafka.group":              "cutover-" + name + "-sink",
				"kafka.replication_factor": 1,
				"kafka.tls.ca_file":        ca,
				"sink.dynamodb.table":      name,
				"sink.dynamodb.endpoint":   stack.DynamoDBEndpoint(t),
				"checkpoint.dir":           t.TempDir(),
			}}
	},
	"redis-to-dynamodb-items.yaml": func(t *testing.T) exampleCase {
		src := stack.NewRedis(t, "--requirepass", "source-secret")
		ctx := testCtx(t, time.Minute)
		for i := range 150 {
			must(t, src.Client.HSet(ctx, "user:"+strconv.Itoa(i), "name", "Ada "+strconv.Itoa(i), "age", strconv.Itoa(18+i%80),
				"avatar", string([]byte{0, 0xff, byte(i)}), "prefs", fmt.Sprintf(`{"theme":"dark","n":%d,"tags":["a","b"]}`, i)).Err())
			must(t, src.Client.HSet(ctx, fmt.Sprintf("order:u%d:%d", i%30, i), "status", "paid",
				"total", fmt.Sprintf("%d.%02d", i, i%100), "lines", fmt.Sprintf(`[{"sku":"s%d","qty":%d}]`, i, 1+i%5)).Err())
			if i%10 == 0 {
				must(t, src.Client.Expire(ctx, "user:"+strconv.Itoa(i), 2*time.Hour).Err())
			}
		}
		for i := range 20 {
			must(t, src.Client.Set(ctx, "session:"+strconv.Itoa(i), "token-"+strconv.Itoa(i), time.Hour).Err())
		}
		for i := range 10 { // no rule takes these: the include leaves them out
			must(t, src.Client.Set(ctx, "cache:"+strconv.Itoa(i), "x", 0).Err())
		}
		name := exampleName(t)
		users, orders, sessions := name+"-users", name+"-orders", name+"-sessions"
		db := dynamoClient(t)
		createTable(t, db, users, keyAttr{"userId", types.ScalarAttributeTypeS})
		createTable(t, db, orders, keyAttr{"userId", types.ScalarAttributeTypeS}, keyAttr{"orderId", types.ScalarAttributeTypeN})
		createTable(t, db, sessions, keyAttr{"id", types.ScalarAttributeTypeS})
		return exampleCase{compared: 320,
			env: append(redisEnv(src), "KAFKA_BOOTSTRAP="+strings.Join(stack.KafkaBrokers(t), ",")),
			set: map[string]any{
				"name":                         name,
				"kafka.replication_factor":     1,
				"sink.dynamodb.endpoint":       stack.DynamoDBEndpoint(t),
				"sink.dynamodb.rules[0].table": users,
				"sink.dynamodb.rules[1].table": orders,
				"sink.dynamodb.rules[2].table": sessions,
				"checkpoint.dir":               t.TempDir(),
			}}
	},
	"dynamodb-to-redis.yaml": func(t *testing.T) exampleCase {
		o := exampleOrders(t)
		dst := stack.NewRedis(t, "--requirepass", "target-secret")
		return exampleCase{compared: int64(o.Items),
			env: []string{"KAFKA_BOOTSTRAP=" + strings.Join(stack.KafkaBrokers(t), ","),
				"TARGET_REDIS_ADDR=" + dst.Addr, "TARGET_REDIS_PASSWORD=target-secret"},
			set: map[string]any{
				"name":                     exampleName(t),
				"source.dynamodb.table":    o.Table,
				"source.dynamodb.endpoint": stack.DynamoDBEndpoint(t),
				"kafka.replication_factor": 1,
				"checkpoint.dir":           t.TempDir(),
			}}
	},
	"dynamodb-to-dynamodb.yaml": func(t *testing.T) exampleCase {
		o := exampleOrders(t)
		// create_table: false — "create it yourself, with the same key
		// schema", as the example says.
		target := &datagen.Orders{Table: o.Table + "-copy", NoStream: true}
		must(t, target.CreateTable(testCtx(t, 2*time.Minute), dynamoClient(t)))
		return exampleCase{compared: int64(o.Items),
			env: []string{"KAFKA_BOOTSTRAP=" + strings.Join(stack.KafkaBrokers(t), ",")},
			set: map[string]any{
				"name":                     exampleName(t),
				"source.dynamodb.table":    o.Table,
				"source.dynamodb.endpoint": stack.DynamoDBEndpoint(t),
				"kafka.replication_factor": 1,
				"sink.dynamodb.table":      target.Table,
				"sink.dynamodb.endpoint":   stack.DynamoDBEndpoint(t),
				"checkpoint.dir":           t.TempDir(),
				"metrics_addr":             "127.0.0.1:0",
			}}
	},
}

// TestExamples runs every example configuration end to end on the local
// stack: backfill, then reconcile, both exiting 0.
func TestExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../deploy/examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range files {
		file := filepath.Base(f)
		prepare, ok := exampleCases[file]
		if !ok {
			t.Errorf("deploy/examples/%s has no case in test/examples_test.go: every example runs end to end", file)
			continue
		}
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			t.Parallel()
			if strings.Contains(file, "dynamodb") || file == "demo.yaml" {
				stack.LoadDynamoDB(t, 1)
			}
			c := prepare(t)
			cfg := rewriteExample(t, file, c.set)
			// A bound for a state (done, compared), not a speed: DynamoDB
			// Local with streams writes about 45 items a second.
			ctx := testCtx(t, 10*time.Minute)
			res := stack.RunEnv(ctx, t, c.env, "backfill", "--config", cfg)
			if res.Code != 0 {
				rewritten, _ := os.ReadFile(cfg)
				t.Fatalf("backfill --config %s exited %d\nthe file:\n%s\nstdout:\n%s\nstderr:\n%s", file, res.Code, rewritten, res.Stdout, stack.Tail(res.Stderr, 40))
			}
			if n := summaryCount(t, res.Stdout, "dead-lettered"); n != 0 {
				t.Errorf("backfill dead-lettered %d events:\n%s", n, res.Stdout)
			}
			res = stack.RunEnv(ctx, t, c.env, "reconcile", "--config", cfg, "--output", "json")
			if res.Code != 0 {
				t.Fatalf("reconcile --config %s exited %d\nstdout:\n%s\nstderr:\n%s", file, res.Code, res.Stdout, stack.Tail(res.Stderr, 40))
			}
			var rep reconcileReport
			if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
				t.Fatalf("reconcile output is not a report: %v\n%s", err, res.Stdout)
			}
			if rep.Compared != c.compared || rep.Equal != c.compared {
				t.Errorf("reconcile compared %d keys, %d equal; want %d, all equal\n%s", rep.Compared, rep.Equal, c.compared, res.Stdout)
			}
		})
	}
}

// exampleName is a pipeline name (topic, group, checkpoints) and table
// name of this test's own.
func exampleName(t *testing.T) string {
	return stack.Unique(strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
}

// seedRedis writes spec's dataset into r.
func seedRedis(t *testing.T, r *stack.Redis, spec datagen.Spec) datagen.Summary {
	t.Helper()
	sum, err := datagen.Seed(testCtx(t, 2*time.Minute), r.Client, spec)
	must(t, err)
	return sum
}

// redisEnv is the environment of an example whose source is r, started
// with --requirepass: the default user and r's password.
func redisEnv(r *stack.Redis) []string {
	return []string{"REDIS_ADDR=" + r.Addr, "REDIS_USERNAME=default", "REDIS_PASSWORD=" + r.Client.Options().Password}
}

// exampleOrders is a source table of a few hundred orders, with every
// attribute type, its stream on.
func exampleOrders(t *testing.T) *datagen.Orders {
	t.Helper()
	o := &datagen.Orders{Table: exampleName(t), Items: 300, Users: 40, Seed: 23}
	createOrders(t, dynamoClient(t), o)
	return o
}

type keyAttr struct {
	name string
	typ  types.ScalarAttributeType
}

// createTable creates an on-demand table with the key hash (and range,
// when given), and drops it when t ends.
func createTable(t *testing.T, db *dynamodb.Client, table string, hash keyAttr, rng ...keyAttr) {
	t.Helper()
	in := &dynamodb.CreateTableInput{TableName: aws.String(table), BillingMode: types.BillingModePayPerRequest}
	for i, k := range append([]keyAttr{hash}, rng...) {
		kt := types.KeyTypeHash
		if i > 0 {
			kt = types.KeyTypeRange
		}
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String(k.name), AttributeType: k.typ})
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String(k.name), KeyType: kt})
	}
	ctx := testCtx(t, 2*time.Minute)
	stack.DropTables(t, db, table)
	_, err := db.CreateTable(ctx, in)
	must(t, err)
	must(t, dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, time.Minute))
}

// placeholder stands for ${name} while an example is edited as YAML
// (`[${KAFKA_BOOTSTRAP}]` is not YAML until expanded).
func placeholder(name string) string { return "cutover-example-var-" + name }

// rewriteExample writes deploy/examples/file, with the values of set at
// their paths and its ${VAR}s kept, to a file of t's own and returns it.
func rewriteExample(t *testing.T, file string, set map[string]any) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("../deploy/examples", file))
	must(t, err)
	var doc yaml.Node
	must(t, yaml.Unmarshal([]byte(envRef.ReplaceAllString(string(raw), placeholder("$1"))), &doc))
	for path, v := range set {
		setYAMLPath(t, doc.Content[0], path, v)
	}
	out, err := yaml.Marshal(&doc)
	must(t, err)
	text := regexp.MustCompile(regexp.QuoteMeta(placeholder(""))+`([A-Za-z_][A-Za-z0-9_]*)`).ReplaceAllString(string(out), "$${$1}")
	p := filepath.Join(t.TempDir(), file)
	must(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

// setYAMLPath sets the value at a dotted path (list items as name[i]) of
// the mapping m, adding missing keys.
func setYAMLPath(t *testing.T, m *yaml.Node, path string, v any) {
	t.Helper()
	n := m
	parts := strings.Split(path, ".")
	for i, part := range parts {
		name, index := part, -1
		if open := strings.Index(part, "["); open >= 0 {
			name = part[:open]
			var err error
			if index, err = strconv.Atoi(strings.TrimSuffix(part[open+1:], "]")); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		if n.Kind != yaml.MappingNode {
			t.Fatalf("%s: %s is not in a mapping", path, name)
		}
		var child *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == name {
				child = n.Content[j+1]
			}
		}
		if child == nil {
			if index >= 0 {
				t.Fatalf("%s: no list %s", path, name)
			}
			child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name}, child)
		}
		if index >= 0 {
			if child.Kind != yaml.SequenceNode || index >= len(child.Content) {
				t.Fatalf("%s: %s has no item %d", path, name, index)
			}
			child = child.Content[index]
		}
		if i == len(parts)-1 {
			var value yaml.Node
			must(t, value.Encode(v))
			*child = value
		}
		n = child
	}
}
