package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pipelineArgs are the flags of a pipeline from r to a fresh table and
// topic, named after the test.
type pipelineArgs struct {
	name, table string
	ckDir       string
	args        []string
}

// newPipeline is a pipeline from r to a new DynamoDB table.
func newPipeline(t *testing.T, r *stack.Redis, extra ...string) pipelineArgs {
	t.Helper()
	p := basePipeline(t, r)
	p.table = p.name
	stack.DropTables(t, dynamoClient(t), p.table)
	p.args = append(append(p.args, "--dynamodb-endpoint", stack.DynamoDBEndpoint(t), "--dynamodb-table", p.table), extra...)
	return p
}

// newRedisPipeline is a pipeline from r to the Redis target dst.
func newRedisPipeline(t *testing.T, r, dst *stack.Redis, extra ...string) pipelineArgs {
	t.Helper()
	p := basePipeline(t, r)
	p.args = append(append(p.args, "--target-redis-addr", dst.Addr), extra...)
	return p
}

func basePipeline(t *testing.T, r *stack.Redis) pipelineArgs {
	name := stack.Unique(strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	ck := t.TempDir()
	return pipelineArgs{name: name, ckDir: ck, args: []string{
		"--name", name,
		"--redis-addr", r.Addr,
		"--kafka-brokers", strings.Join(stack.KafkaBrokers(t), ","),
		"--partitions", "4",
		"--checkpoint-dir", ck,
		"--progress-interval", "2s",
	}}
}

func dynamoClient(t *testing.T) *dynamodb.Client { return stack.DynamoDB(t) }

// scanTable reads every item of a table, keyed by the raw partition key.
func scanTable(t *testing.T, db *dynamodb.Client, table string) map[string]map[string]types.AttributeValue {
	t.Helper()
	items := map[string]map[string]types.AttributeValue{}
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(testCtx(t, time.Minute))
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		for _, it := range page.Items {
			switch k := it["pk"].(type) {
			case *types.AttributeValueMemberB:
				items[string(k.Value)] = it
			case *types.AttributeValueMemberS:
				items[k.Value] = it
			default:
				t.Fatalf("item without a pk of type S or B: %v", it)
			}
		}
	}
	return items
}

// writeEdgeCases adds the keys each mapping branch exists for.
func writeEdgeCases(t *testing.T, rdb *goredis.Client) []string {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	bigHash := map[string]any{}
	for i := range 2000 {
		bigHash["f"+strconv.Itoa(i)] = strings.Repeat("x", i%50)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rdb.Set(ctx, "edge:empty-string", "", 0).Err())
	must(rdb.Set(ctx, "edge:ttl-ms", "soon-ish", 90*time.Minute+123*time.Millisecond).Err())
	must(rdb.HSet(ctx, "edge:hash-empty-field", "", "empty name", "x", "").Err())
	must(rdb.HSet(ctx, "edge:hash-big", bigHash).Err())
	must(rdb.SAdd(ctx, "edge:set-empty-member", "", "a").Err())
	must(rdb.RPush(ctx, "edge:list-repeats", "a", "a", "", "a").Err())
	must(rdb.ZAdd(ctx, "edge:zset-extremes",
		goredis.Z{Member: "ninf", Score: math.Inf(-1)}, goredis.Z{Member: "inf", Score: math.Inf(1)},
		goredis.Z{Member: "huge", Score: 1e300}, goredis.Z{Member: "tiny", Score: 5e-324},
		goredis.Z{Member: "third", Score: 0.1 + 0.2}).Err())
	must(rdb.Set(ctx, "edge:\x00\xff\xfe-binary-key", "\x00\x01\xff", 0).Err())
	must(rdb.Set(ctx, "edge:ünïcödé-key", "välüe", 0).Err())
	return []string{"edge:empty-string", "edge:ttl-ms", "edge:hash-empty-field", "edge:hash-big", "edge:set-empty-member",
		"edge:list-repeats", "edge:zset-extremes", "edge:\x00\xff\xfe-binary-key", "edge:ünïcödé-key"}
}

// TestBackfillRedisToDynamoDB copies every Redis type, TTLs and binary
// keys included, and checks every key against its item, field by field,
// with a decoding written here rather than the sink's own.
func TestBackfillRedisToDynamoDB(t *testing.T) {
	t.Parallel()
	stack.LoadDynamoDB(t, 1)
	r := stack.NewRedis(t)
	ctx := testCtx(t, 5*time.Minute)
	if _, err := datagen.Seed(ctx, r.Client, datagen.Spec{Keys: 12_000, Seed: 7, TTLFraction: 0.1, BinaryFraction: 0.05}); err != nil {
		t.Fatal(err)
	}
	edges := writeEdgeCases(t, r.Client)
	p := newPipeline(t, r, "--create-table", "--key-type", "B")

	res := stack.Run(ctx, t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("backfill exited %d\nstdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, want := range []string{"backfill of pipeline", "events applied", "12,009", " upserts, ", "dead-lettered                 0"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Stdout)
		}
	}

	items := scanTable(t, dynamoClient(t), p.table)
	var keys []string
	iter := r.Client.Scan(ctx, 0, "", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 12_009 || len(items) != len(keys) {
		t.Fatalf("redis has %d keys, the table %d items; want 12009 of each", len(keys), len(items))
	}
	for _, k := range keys {
		item, ok := items[k]
		if !ok {
			t.Errorf("key %q has no item", k)
			continue
		}
		if err := compareItem(ctx, r.Client, k, item); err != nil {
			t.Errorf("key %q: %v", k, err)
		}
	}
	for _, k := range edges {
		if _, ok := items[k]; !ok {
			t.Errorf("edge case %q was not copied", k)
		}
	}

	// reconcile agrees, and says so with exit status 0.
	rec := stack.Run(ctx, t, append([]string{"reconcile"}, p.args...)...)
	if rec.Code != 0 || !strings.Contains(rec.Stdout, "12,009") {
		t.Fatalf("reconcile exited %d\n%s\n%s", rec.Code, rec.Stdout, rec.Stderr)
	}

	// A second backfill of the same data writes nothing new: every event
	// carries a newer read, so each write succeeds, but the values are
	// unchanged — and nothing is dead-lettered.
	res2 := stack.Run(ctx, t, append([]string{"backfill"}, p.args...)...)
	if res2.Code != 0 {
		t.Fatalf("second backfill exited %d\n%s\n%s", res2.Code, res2.Stdout, res2.Stderr)
	}
	if rec := stack.Run(ctx, t, append([]string{"reconcile"}, p.args...)...); rec.Code != 0 {
		t.Fatalf("reconcile after the second backfill exited %d\n%s", rec.Code, rec.Stdout)
	}
}

// compareItem checks one item against the live Redis key.
func compareItem(ctx context.Context, rdb *goredis.Client, key string, item map[string]types.AttributeValue) error {
	typ, err := rdb.Type(ctx, key).Result()
	if err != nil {
		return err
	}
	if s, ok := item["cutover_type"].(*types.AttributeValueMemberS); !ok || s.Value != typ {
		return fmt.Errorf("cutover_type = %v, redis type %s", item["cutover_type"], typ)
	}
	if v, ok := item["cutover_version"].(*types.AttributeValueMemberB); !ok || len(v.Value) != 16 {
		return fmt.Errorf("cutover_version = %v, want 16 bytes", item["cutover_version"])
	}
	pttl, err := rdb.PTTL(ctx, key).Result()
	if err != nil {
		return err
	}
	exp, hasExp := item["expire_at"].(*types.AttributeValueMemberN)
	switch {
	case pttl < 0 && hasExp:
		return fmt.Errorf("no TTL in redis, expire_at %s in the item", exp.Value)
	case pttl > 0 && !hasExp:
		return fmt.Errorf("TTL %v in redis, none in the item", pttl)
	case pttl > 0:
		secs, _ := strconv.ParseInt(exp.Value, 10, 64)
		want := time.Now().Add(pttl)
		if d := time.Unix(secs, 0).Sub(want); d < -2*time.Second || d > 2*time.Second {
			return fmt.Errorf("expire_at %s is %v away from redis' expiry", exp.Value, d)
		}
	}
	val := item["value"]
	switch typ {
	case "string":
		want, err := rdb.Get(ctx, key).Result()
		if err != nil {
			return err
		}
		b, ok := val.(*types.AttributeValueMemberB)
		if !ok || string(b.Value) != want {
			return fmt.Errorf("string value %v, want %q", val, want)
		}
	case "hash":
		want, err := rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return err
		}
		got := map[string]string{}
		switch h := val.(type) {
		case *types.AttributeValueMemberM:
			for name, av := range h.Value {
				got[name] = string(av.(*types.AttributeValueMemberB).Value)
			}
		case *types.AttributeValueMemberL:
			for _, p := range h.Value {
				pair := p.(*types.AttributeValueMemberL).Value
				got[string(pair[0].(*types.AttributeValueMemberB).Value)] = string(pair[1].(*types.AttributeValueMemberB).Value)
			}
		default:
			return fmt.Errorf("hash stored as %T", val)
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("hash has %d fields, redis %d, or values differ", len(got), len(want))
		}
	case "list", "set":
		var want []string
		if typ == "list" {
			want, err = rdb.LRange(ctx, key, 0, -1).Result()
		} else {
			want, err = rdb.SMembers(ctx, key).Result()
		}
		if err != nil {
			return err
		}
		var got []string
		switch l := val.(type) {
		case *types.AttributeValueMemberL:
			for _, av := range l.Value {
				got = append(got, string(av.(*types.AttributeValueMemberB).Value))
			}
		case *types.AttributeValueMemberBS:
			for _, b := range l.Value {
				got = append(got, string(b))
			}
		default:
			return fmt.Errorf("%s stored as %T", typ, val)
		}
		if typ == "set" {
			slices.Sort(got)
			slices.Sort(want)
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s = %q, redis %q", typ, got, want)
		}
	case "zset":
		want, err := rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
		if err != nil {
			return err
		}
		l, ok := val.(*types.AttributeValueMemberL)
		if !ok || len(l.Value) != len(want) {
			return fmt.Errorf("zset stored as %T with wrong length", val)
		}
		for i, p := range l.Value {
			pair := p.(*types.AttributeValueMemberL).Value
			member := string(pair[0].(*types.AttributeValueMemberB).Value)
			var s string
			switch sc := pair[1].(type) {
			case *types.AttributeValueMemberN:
				s = sc.Value
			case *types.AttributeValueMemberS:
				s = sc.Value
			}
			score, err := strconv.ParseFloat(strings.TrimPrefix(s, "+"), 64)
			if err != nil {
				return fmt.Errorf("zset score %q: %w", s, err)
			}
			if member != want[i].Member.(string) || score != want[i].Score {
				return fmt.Errorf("zset member %d = %q %v, redis %q %v", i, member, score, want[i].Member, want[i].Score)
			}
		}
	default:
		return fmt.Errorf("unexpected redis type %s", typ)
	}
	return nil
}

// TestBackfillSelectsByPatternAndType: --include, --exclude and --type
// copy exactly the keys they select. Two shapes, because the snapshot
// filters in two places: one pattern and one type go to SCAN itself
// (MATCH and TYPE), several are checked per key.
func TestBackfillSelectsByPatternAndType(t *testing.T) {
	t.Parallel()
	src := stack.NewRedis(t)
	ctx := testCtx(t, 2*time.Minute)
	pipe := src.Client.Pipeline()
	for i := range 300 {
		pipe.HSet(ctx, fmt.Sprint("user:", i), "name", fmt.Sprint("u", i))
		pipe.HSet(ctx, fmt.Sprint("user:", i, ":lock"), "owner", "x") // excluded by pattern
		pipe.Set(ctx, fmt.Sprint("user:", i, ":name"), "text", 0)     // a string
		pipe.ZAdd(ctx, fmt.Sprint("user:", i, ":scores"), goredis.Z{Member: "m", Score: float64(i)})
		pipe.HSet(ctx, fmt.Sprint("order:", i), "total", i)
		pipe.RPush(ctx, fmt.Sprint("acct:", i), "a", "b")
	}
	_, err := pipe.Exec(ctx)
	must(t, err)

	for _, c := range []struct {
		name  string
		flags []string
		want  func(key, typ string) bool
	}{
		{"one pattern and one type", []string{"--include", "user:*", "--exclude", "user:*:lock", "--type", "hash"},
			func(k, typ string) bool {
				return strings.HasPrefix(k, "user:") && !strings.HasSuffix(k, ":lock") && typ == "hash"
			}},
		{"several patterns and types", []string{"--include", "user:*", "--include", "acct:*", "--exclude", "user:*:lock",
			"--type", "hash", "--type", "zset", "--type", "list"},
			func(k, typ string) bool {
				return (strings.HasPrefix(k, "user:") || strings.HasPrefix(k, "acct:")) && !strings.HasSuffix(k, ":lock") &&
					(typ == "hash" || typ == "zset" || typ == "list")
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// Its own bound: a parallel subtest starts only when a slot is
			// free, which can be minutes after its parent returned.
			ctx := testCtx(t, 2*time.Minute)
			dst := stack.NewRedis(t)
			p := newRedisPipeline(t, src, dst, c.flags...)
			res := stack.Run(ctx, t, append([]string{"backfill"}, p.args...)...)
			if res.Code != 0 {
				t.Fatalf("backfill exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
			}
			all := redisContents(ctx, t, src.Client)
			want := map[string]string{}
			for k, v := range all {
				if c.want(k, strings.Fields(v)[0]) {
					want[k] = v
				}
			}
			got := redisContents(ctx, t, dst.Client)
			if len(want) == 0 || !maps.Equal(got, want) {
				t.Fatalf("the target is not exactly the selected keys:\n%s", diffContents(want, got))
			}
			if read := summaryCount(t, res.Stdout, "keys read"); read != int64(len(want)) {
				t.Errorf("summary: %d keys read, want %d\n%s", read, len(want), res.Stdout)
			}
		})
	}
}

// TestBackfillKeysPerSecond: --keys-per-second paces the snapshot's
// reads. The pace is measured at the source, from the server's own count
// of the read script's calls (one per key), so neither the process' start
// nor the sink's speed is in it: 4,000 keys at 1,000 keys/s, after a
// burst of one SCAN page (1,000 keys), take 3 s to read. A SCAN page is
// only about COUNT keys, so 80% of that is required; unpaced, the reads
// take a few hundred milliseconds.
func TestBackfillKeysPerSecond(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	const keys, pace = 4000, 1000
	seedStrings1K(t, src.Client, "k:", keys)
	p := newRedisPipeline(t, src, dst, "--keys-per-second", strconv.Itoa(pace), "--scan-count", "1000")
	proc := stack.Start(t, nil, append([]string{"backfill"}, p.args...)...)
	var first, last time.Time
	for last.IsZero() {
		n := keysRead(t, src)
		now := time.Now()
		if n > 0 && first.IsZero() {
			first = now
		}
		if n >= keys {
			last = now
		}
		if proc.Exited() && last.IsZero() {
			out, errOut := proc.Output()
			t.Fatalf("backfill ended with %d keys read\n%s\n%s", n, out, errOut)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := last.Sub(first)
	t.Logf("%d keys read in %v at --keys-per-second %d", keys, took, pace)
	if least := time.Duration(keys-pace) * time.Second / pace * 8 / 10; took < least {
		t.Fatalf("%d keys were read in %v: faster than --keys-per-second %d allows (at least %v)", keys, took, pace, least)
	}
	waitLog(t, proc, time.Minute, func(string) bool { return proc.Exited() })
	if out, errOut := proc.Output(); proc.Stop() != 0 {
		t.Fatalf("backfill failed\n%s\n%s", out, errOut)
	}
	waitSame(t, src.Client, dst.Client, 30*time.Second)
}

// TestBackfillResumesAtSavedCursor: an interrupted snapshot resumes from
// its saved cursor, which was only shown by a log line ("resuming
// snapshot"). Here the server counts the reads: after a SIGKILL, the
// second run reads exactly the keys SCAN returns from the saved cursor
// on — not the keys before it — and the target still gets every key.
func TestBackfillResumesAtSavedCursor(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 2*time.Minute)
	const keys = 20_000
	seedNumbered(t, src.Client, "k:", keys)
	p := newRedisPipeline(t, src, dst, "--keys-per-second", "4000", "--scan-count", "1000")
	proc := stack.Start(t, nil, append([]string{"backfill"}, p.args...)...)
	var pos struct {
		Cursor  uint64 `json:"cursor"`
		Scanned int64  `json:"scanned"`
	}
	readPos := func() {
		pos.Cursor, pos.Scanned = 0, 0
		_ = filepath.WalkDir(p.ckDir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, "snapshot.ckpt") {
				if raw, err := os.ReadFile(path); err == nil {
					_ = json.Unmarshal(raw, &pos)
				}
			}
			return nil
		})
	}
	deadline := time.Now().Add(time.Minute)
	for readPos(); pos.Cursor == 0 || pos.Scanned < 4000; readPos() {
		if proc.Exited() || time.Now().After(deadline) {
			t.Fatal("the backfill saved no cursor past 4,000 keys before it ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
	proc.Kill()
	readPos() // the last one saved before the kill
	// What SCAN returns from the saved cursor on, with the same COUNT.
	remaining := 0
	for cursor := pos.Cursor; ; {
		page, next, err := src.Client.Scan(ctx, cursor, "", 1000).Result()
		must(t, err)
		remaining += len(page)
		if cursor = next; cursor == 0 {
			break
		}
	}
	must(t, src.Client.ConfigResetStat(ctx).Err())
	res := stack.Run(ctx, t, append([]string{"backfill"}, withFlags(p.args, "--keys-per-second", "0")...)...)
	if res.Code != 0 {
		t.Fatalf("the resumed backfill exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	reads := keysRead(t, src)
	t.Logf("cursor saved after %d keys; the resumed run read %d keys, SCAN from the cursor returns %d", pos.Scanned, reads, remaining)
	if reads != int64(remaining) || remaining >= keys-1000 {
		t.Fatalf("the resumed run read %d keys; from the saved cursor (after %d of %d keys) SCAN returns %d", reads, pos.Scanned, keys, remaining)
	}
	waitSame(t, src.Client, dst.Client, 30*time.Second)
}
