package test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/test/stack"
)

// BenchmarkLatency measures live replication latency: from the moment a
// write is sent to the source to the moment the target applies it (the
// target Redis announces every write as a keyspace event; the benchmark
// subscribes). The writer writes new keys at fixed rates for 15 s each:
// Redis → Redis at 1,000, 10,000 and 30,000 writes/s, DynamoDB → Redis at
// 200 writes/s (what DynamoDB Local takes). It appends a table to CUTOVER_BENCH_REPORT.
func BenchmarkLatency(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		var rows []string
		src := stack.NewRedis(b)
		dst := stack.NewRedis(b, "--notify-keyspace-events", "KEA")
		p := newRedisPipelineB(b, src, dst, "--partitions", "12")
		proc := stack.Start(b, nil, append([]string{"replicate"}, p...)...)
		waitApplied(ctx, b, dst.Client, func(key string) error { return src.Client.Set(ctx, key, "x", 0).Err() })
		for _, rate := range []int{1000, 10_000, 30_000} {
			prefix := fmt.Sprintf("lat%d:", rate)
			write := func(ctx context.Context, keys []string) error {
				pipe := src.Client.Pipeline()
				for _, k := range keys {
					pipe.Set(ctx, k, "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz", 0)
				}
				_, err := pipe.Exec(ctx)
				return err
			}
			rows = append(rows, measureLatency(ctx, b, "Redis → Redis", dst.Client, prefix, rate, write))
		}
		proc.Stop()

		// DynamoDB → Redis.
		db := stack.DynamoDB(b)
		table := stack.Unique("latency")
		stack.DropTables(b, db, table)
		createKeyTable(ctx, b, db, table, true)
		dst2 := stack.NewRedis(b, "--notify-keyspace-events", "KEA")
		name := stack.Unique("bench")
		proc = stack.Start(b, nil, "replicate", "--name", name, "--source-table", table, "--source-endpoint", stack.DynamoDBEndpoint(b),
			"--kafka-brokers", strings.Join(stack.KafkaBrokers(b), ","), "--partitions", "12", "--checkpoint-dir", b.TempDir(),
			"--progress-interval", "0", "--target-redis-addr", dst2.Addr, "--target-key-template", "{pk}")
		put := func(ctx context.Context, keys []string) error {
			g, ctx := errgroup.WithContext(ctx)
			for _, k := range keys {
				g.Go(func() error {
					_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
						"pk": &types.AttributeValueMemberS{Value: k}, "n": &types.AttributeValueMemberN{Value: "42"},
						"s": &types.AttributeValueMemberS{Value: "0123456789abcdefghijklmnopqrstuvwxyz"}}})
					return err
				})
			}
			return g.Wait()
		}
		waitApplied(ctx, b, dst2.Client, func(key string) error { return put(ctx, []string{key}) })
		// DynamoDB Local takes a few hundred single-item writes a second on
		// this machine, not thousands: the rate stays below that.
		rows = append(rows, measureLatency(ctx, b, "DynamoDB → Redis", dst2.Client, "latd:", 200, put))
		proc.Stop()

		writeReport(b, "| live replication, write → applied | writes/s offered | writes/s made | p50 | p99 | p99.9 | max | not applied |\n"+
			"|---|---:|---:|---:|---:|---:|---:|---:|\n"+strings.Join(rows, "\n")+"\n\n"+
			"Target: p99 ≤ 50 ms at 10,000 writes/s Redis → Redis. Each rate runs 15 s; the clock stops when the target's keyspace event arrives.\n")
	}
}

// waitApplied writes probe keys until one shows up in the target: the
// pipeline is running and live.
func waitApplied(ctx context.Context, b *testing.B, dst *goredis.Client, write func(key string) error) {
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; time.Now().Before(deadline); i++ {
		key := "probe:" + strconv.Itoa(i)
		if err := write(key); err != nil {
			b.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		if dst.Exists(ctx, key).Val() == 1 {
			return
		}
	}
	b.Fatal("the pipeline did not apply a probe key within 2 minutes")
}

// measureLatency writes new keys prefix+N at rate for 15 s, timing each
// from its send to the target's keyspace event, and returns a table row.
func measureLatency(ctx context.Context, b *testing.B, pair string, dst *goredis.Client, prefix string, rate int,
	write func(ctx context.Context, keys []string) error) string {
	const d = 15 * time.Second
	n := rate * int(d/time.Second)
	sent := make([]time.Time, n)
	got := make([]time.Duration, n)
	var mu sync.Mutex
	ps := dst.PSubscribe(ctx, "__keyevent@0__:*")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		b.Fatal(err)
	}
	ch := ps.Channel(goredis.WithChannelSize(1 << 20))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ch {
			now := time.Now()
			i, err := strconv.Atoi(strings.TrimPrefix(m.Payload, prefix))
			if err != nil || !strings.HasPrefix(m.Payload, prefix) || i >= n {
				continue
			}
			mu.Lock()
			if got[i] == 0 && !sent[i].IsZero() {
				got[i] = now.Sub(sent[i])
			}
			mu.Unlock()
		}
	}()

	perTick := max(1, rate/1000)
	every := time.Second * time.Duration(perTick) / time.Duration(rate)
	start, made := time.Now(), 0
	for made < n {
		if wait := time.Until(start.Add(time.Duration(made/perTick) * every)); wait > 0 {
			time.Sleep(wait)
		}
		keys := make([]string, 0, perTick)
		now := time.Now()
		mu.Lock()
		for i := made; i < min(made+perTick, n); i++ {
			keys = append(keys, prefix+strconv.Itoa(i))
			sent[i] = now
		}
		mu.Unlock()
		if err := write(ctx, keys); err != nil {
			b.Fatal(err)
		}
		made += len(keys)
	}
	achieved := float64(n) / time.Since(start).Seconds()
	// Let the last writes arrive.
	for wait := time.Now().Add(30 * time.Second); time.Now().Before(wait); time.Sleep(200 * time.Millisecond) {
		mu.Lock()
		missing := slices.Contains(got, 0)
		mu.Unlock()
		if !missing {
			break
		}
	}
	ps.Close()
	<-done
	var lat []time.Duration
	missing := 0
	for _, g := range got {
		if g == 0 {
			missing++
			continue
		}
		lat = append(lat, g)
	}
	slices.Sort(lat)
	ms := func(f float64) float64 {
		if len(lat) == 0 {
			return -1
		}
		return float64(lat[min(len(lat)-1, int(f*float64(len(lat))))].Microseconds()) / 1000
	}
	q := func(f float64) string {
		if len(lat) == 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f ms", ms(f))
	}
	row := fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %d |", pair, group(int64(rate)), group(int64(achieved)),
		q(0.5), q(0.99), q(0.999), q(1), missing)
	writeJSON(b, "4. live latency "+pair, map[string]any{"offered_per_s": rate, "made_per_s": achieved,
		"p50_ms": ms(0.5), "p99_ms": ms(0.99), "p999_ms": ms(0.999), "max_ms": ms(1), "not_applied": missing})
	b.Log(row)
	return row
}
