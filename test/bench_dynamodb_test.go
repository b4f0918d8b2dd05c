package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// BenchmarkBackfillDynamoDB measures, in one run, against DynamoDB Local:
//
//  1. cutover backfill Redis → Kafka → DynamoDB of CUTOVER_BENCH_DYNAMODB_KEYS
//     strings of 100 bytes (default 200,000; 10% with a TTL), against a
//     direct copy: SCAN, pipelined GET + PTTL, BatchWriteItem of the same
//     items (key, type, value, expiry), 16 batches in flight, run before
//     and after cutover (DynamoDB Local slows down with use);
//  2. cutover backfill DynamoDB → Kafka → Redis of a table of as many
//     items of every attribute type (datagen.Orders), against a direct
//     copy: a parallel Scan of 4 segments, each page written as hashes
//     (one field per attribute) in one pipeline.
//
// It appends a markdown table to CUTOVER_BENCH_REPORT (make bench).
func BenchmarkBackfillDynamoDB(b *testing.B) {
	n := 200_000
	if v := os.Getenv("CUTOVER_BENCH_DYNAMODB_KEYS"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	ctx := context.Background()
	db := stack.DynamoDB(b)
	src := stack.NewRedis(b)
	if err := seedStrings(ctx, src.Client, n, time.Now().Add(6*time.Hour)); err != nil {
		b.Fatal(err)
	}
	o := &datagen.Orders{Table: stack.Unique("bench-orders"), Items: n, Seed: 5}
	stack.DropTables(b, db, o.Table)
	t0 := time.Now()
	if err := o.CreateTable(ctx, db); err != nil {
		b.Fatal(err)
	}
	if err := o.Fill(ctx, db); err != nil {
		b.Fatal(err)
	}
	b.Logf("filled a table of %d items in %v", n, time.Since(t0).Round(time.Millisecond))

	for b.Loop() {
		// 1. Redis → DynamoDB. DynamoDB Local slows down as it is used, so
		// the baseline runs before and after cutover and counts as the
		// mean of the two: neither side gets the fresher server.
		toDirect := func() time.Duration {
			direct := stack.Unique("bench-direct")
			stack.DropTables(b, db, direct)
			createKeyTable(ctx, b, db, direct, false)
			t0 := time.Now()
			if err := directToDynamoDB(ctx, src.Client, db, direct); err != nil {
				b.Fatal(err)
			}
			took := time.Since(t0)
			stack.DropTables(b, db, direct)
			return took
		}
		toBefore := toDirect()
		table := stack.Unique("bench-cutover")
		stack.DropTables(b, db, table)
		toTable := runMeasured(ctx, b, "backfill", "--name", stack.Unique("bench"), "--redis-addr", src.Addr,
			"--kafka-brokers", strings.Join(stack.KafkaBrokers(b), ","), "--checkpoint-dir", b.TempDir(), "--progress-interval", "0",
			"--partitions", "12", "--dynamodb-endpoint", stack.DynamoDBEndpoint(b), "--dynamodb-table", table,
			"--create-table", "--key-type", "S", "--sink-concurrency", "16")
		stack.DropTables(b, db, table)
		toAfter := toDirect()
		toTableDirect := (toBefore + toAfter) / 2

		// 2. DynamoDB → Redis, the baseline around cutover as well.
		dst := stack.NewRedis(b)
		fromDirect := func() time.Duration {
			t0 := time.Now()
			if err := directFromDynamoDB(ctx, db, o.Table, dst.Client); err != nil {
				b.Fatal(err)
			}
			took := time.Since(t0)
			if got := dst.Client.DBSize(ctx).Val(); got != int64(n) {
				b.Fatalf("the direct copy wrote %d hashes, want %d", got, n)
			}
			dst.Client.FlushAll(ctx)
			return took
		}
		fromBefore := fromDirect()
		fromTable := runMeasured(ctx, b, "backfill", "--name", stack.Unique("bench"), "--source-table", o.Table,
			"--source-endpoint", stack.DynamoDBEndpoint(b), "--kafka-brokers", strings.Join(stack.KafkaBrokers(b), ","),
			"--checkpoint-dir", b.TempDir(), "--progress-interval", "0", "--partitions", "12",
			"--target-redis-addr", dst.Addr, "--target-key-template", "order:{userId}:{orderId}")
		dst.Client.FlushAll(ctx)
		fromAfter := fromDirect()
		fromTableDirect := (fromBefore + fromAfter) / 2

		rate := func(d time.Duration) string { return group(int64(float64(n) / d.Seconds())) }
		writeReport(b, fmt.Sprintf(`| DynamoDB Local, %s keys / items | direct baseline | cutover | ratio | target |
|---|---:|---:|---:|---:|
| 3a. backfill Redis → Kafka → DynamoDB | %.1fs, %s keys/s | %.1fs, %s keys/s | %.2f | ≥ 0.8 |
| 3b. backfill DynamoDB → Kafka → Redis | %.1fs, %s items/s | %.1fs, %s items/s | %.2f | ≥ 0.8 |

Each baseline is the mean of a run before cutover's and one after it (3a: %.1fs and %.1fs; 3b: %.1fs and %.1fs): DynamoDB Local slows down with use.
cutover: 3a %.1fs of CPU, peak RSS %d MB; 3b %.1fs of CPU, peak RSS %d MB.
Machine: %d CPUs, %s, %s; DynamoDB Local (in memory), Redis, Kafka and cutover on the same machine; %s.
`, group(int64(n)),
			toTableDirect.Seconds(), rate(toTableDirect), toTable.wall.Seconds(), rate(toTable.wall), toTableDirect.Seconds()/toTable.wall.Seconds(),
			fromTableDirect.Seconds(), rate(fromTableDirect), fromTable.wall.Seconds(), rate(fromTable.wall), fromTableDirect.Seconds()/fromTable.wall.Seconds(),
			toBefore.Seconds(), toAfter.Seconds(), fromBefore.Seconds(), fromAfter.Seconds(),
			toTable.cpu.Seconds(), toTable.rssMB, fromTable.cpu.Seconds(), fromTable.rssMB,
			runtime.NumCPU(), memTotal(), runtime.Version(), time.Now().UTC().Format("2006-01-02")))
		writeJSON(b, "3a. backfill Redis → Kafka → DynamoDB", map[string]any{"keys": n, "baseline_s": toTableDirect.Seconds(),
			"baseline_before_s": toBefore.Seconds(), "baseline_after_s": toAfter.Seconds(),
			"cutover_s": toTable.wall.Seconds(), "ratio": toTableDirect.Seconds() / toTable.wall.Seconds(), "cpu_s": toTable.cpu.Seconds(), "peak_rss_mb": toTable.rssMB})
		writeJSON(b, "3b. backfill DynamoDB → Kafka → Redis", map[string]any{"items": n, "baseline_s": fromTableDirect.Seconds(),
			"baseline_before_s": fromBefore.Seconds(), "baseline_after_s": fromAfter.Seconds(),
			"cutover_s": fromTable.wall.Seconds(), "ratio": fromTableDirect.Seconds() / fromTable.wall.Seconds(), "cpu_s": fromTable.cpu.Seconds(), "peak_rss_mb": fromTable.rssMB})
	}
}

// createKeyTable creates an on-demand table keyed by "pk" (S), with a
// stream of new images when stream is set.
func createKeyTable(ctx context.Context, b *testing.B, db *dynamodb.Client, table string, stream bool) {
	var spec *types.StreamSpecification
	if stream {
		spec = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage}
	}
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
		StreamSpecification:  spec,
	}); err != nil {
		b.Fatal(err)
	}
}

// directToDynamoDB is baseline 3a.
func directToDynamoDB(ctx context.Context, src *goredis.Client, db *dynamodb.Client, table string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	err := scanStrings(ctx, src, func(keys []string, items []map[string]types.AttributeValue) {
		for start := 0; start < len(keys); start += 25 {
			var reqs []types.WriteRequest
			for _, item := range items[start:min(start+25, len(keys))] {
				reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
			}
			g.Go(func() error { return datagen.BatchWrite(gctx, db, table, reqs) })
		}
	})
	if werr := g.Wait(); err == nil {
		err = werr
	}
	return err
}

// scanStrings reads a database of strings a page at a time (SCAN, then
// pipelined GET and PTTL) and hands each page's keys to page with their
// items in cutover's generic mapping.
func scanStrings(ctx context.Context, src *goredis.Client, page func(keys []string, items []map[string]types.AttributeValue)) error {
	var cursor uint64
	for {
		keys, next, err := src.Scan(ctx, cursor, "", 1000).Result()
		if err != nil {
			return err
		}
		pipe := src.Pipeline()
		vals := make([]*goredis.StringCmd, len(keys))
		ttls := make([]*goredis.DurationCmd, len(keys))
		for i, k := range keys {
			vals[i], ttls[i] = pipe.Get(ctx, k), pipe.PTTL(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		items := make([]map[string]types.AttributeValue, len(keys))
		for i, k := range keys {
			items[i] = map[string]types.AttributeValue{
				"pk":           &types.AttributeValueMemberS{Value: k},
				"cutover_type": &types.AttributeValueMemberS{Value: "string"},
				"value":        &types.AttributeValueMemberB{Value: []byte(vals[i].Val())},
			}
			if ttl := ttls[i].Val(); ttl > 0 {
				items[i]["expire_at"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Add(ttl).Unix()+1, 10)}
			}
		}
		page(keys, items)
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// directFromDynamoDB is baseline 3b.
func directFromDynamoDB(ctx context.Context, db *dynamodb.Client, table string, dst *goredis.Client) error {
	const segments = 4
	g, gctx := errgroup.WithContext(ctx)
	for seg := range segments {
		g.Go(func() error {
			p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table),
				Segment: aws.Int32(int32(seg)), TotalSegments: aws.Int32(segments)})
			for p.HasMorePages() {
				page, err := p.NextPage(gctx)
				if err != nil {
					return err
				}
				pipe := dst.Pipeline()
				for _, item := range page.Items {
					u, _ := item["userId"].(*types.AttributeValueMemberS)
					o, _ := item["orderId"].(*types.AttributeValueMemberN)
					fields := make([]any, 0, 2*len(item))
					for name, av := range item {
						fields = append(fields, name, plainText(av))
					}
					pipe.HSet(gctx, "order:"+u.Value+":"+o.Value, fields...)
				}
				if _, err := pipe.Exec(gctx); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// plainText is an attribute as a hash field's value: scalars as they are,
// the rest as JSON.
func plainText(av types.AttributeValue) string {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	case *types.AttributeValueMemberB:
		return string(v.Value)
	default:
		raw, _ := json.Marshal(v)
		return string(raw)
	}
}
