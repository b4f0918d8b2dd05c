package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/test/stack"
)

// BenchmarkBackfillRedis measures, in one run, on CUTOVER_BENCH_KEYS
// strings of 100 random bytes (default 1,000,000; 10% with an expiry) plus
// 10,000 hashes of 20 fields:
//
//  1. cutover backfill Redis → Kafka → Redis, against a direct copy with
//     no Kafka in between (SCAN, pipelined DUMP + PTTL, pipelined RESTORE
//     REPLACE, four pages in flight);
//  2. the snapshot alone (replicate --snapshot-only --no-sink: Redis →
//     Kafka), against reading the same keys with SCAN + DUMP + PTTL and
//     nothing else.
//
// It appends a markdown table to CUTOVER_BENCH_REPORT (make bench).
func BenchmarkBackfillRedis(b *testing.B) {
	keys := 1_000_000
	if v := os.Getenv("CUTOVER_BENCH_KEYS"); v != "" {
		keys, _ = strconv.Atoi(v)
	}
	ctx := context.Background()
	src := stack.NewRedis(b)
	t0 := time.Now()
	if err := seedStrings(ctx, src.Client, keys, time.Now().Add(6*time.Hour)); err != nil {
		b.Fatal(err)
	}
	if err := seedHashes(ctx, src.Client, 10_000, 20); err != nil {
		b.Fatal(err)
	}
	total := keys + 10_000
	b.Logf("seeded %d keys in %v", total, time.Since(t0).Round(time.Millisecond))

	for b.Loop() {
		// 1. Direct copy.
		direct := stack.NewRedis(b)
		t0 = time.Now()
		if err := directCopy(ctx, src.Client, direct.Client); err != nil {
			b.Fatal(err)
		}
		directTime := time.Since(t0)
		if n := direct.Client.DBSize(ctx).Val(); n != int64(total) {
			b.Fatalf("direct copy holds %d keys, want %d", n, total)
		}
		directMem, directCPU := serverUsage(ctx, b, direct.Client)
		direct.Client.FlushAll(ctx)

		// cutover backfill.
		dst := stack.NewRedis(b)
		p := newRedisPipelineB(b, src, dst, "--partitions", "12")
		_, srcCPU0 := serverUsage(ctx, b, src.Client)
		run := runMeasured(ctx, b, append([]string{"backfill"}, p...)...)
		if n := dst.Client.DBSize(ctx).Val(); n < int64(total) {
			b.Fatalf("cutover's target holds %d keys, want %d (plus version keys)", n, total)
		}
		dstMem, dstCPU := serverUsage(ctx, b, dst.Client)
		_, srcCPU1 := serverUsage(ctx, b, src.Client)
		dst.Client.FlushAll(ctx)

		// 2. Snapshot alone, against a plain read.
		t0 = time.Now()
		if err := directCopy(ctx, src.Client, nil); err != nil {
			b.Fatal(err)
		}
		readTime := time.Since(t0)
		dst2 := stack.NewRedis(b)
		p2 := newRedisPipelineB(b, src, dst2, "--partitions", "12")
		snap := runMeasured(ctx, b, append([]string{"replicate", "--snapshot-only", "--no-sink"}, p2...)...)

		rate := func(d time.Duration) float64 { return float64(total) / d.Seconds() }
		mb := float64(stringBytes(keys)+hashBytes(10_000, 20)) / 1e6 // keys, fields and values as stored
		report := fmt.Sprintf(`| Redis, %s keys | direct baseline | cutover | ratio | target |
|---|---:|---:|---:|---:|
| 1. backfill Redis → Kafka → Redis | %.1fs, %s keys/s | %.1fs, %s keys/s, %.0f MB/s of keys and values | %.2f | ≥ 0.6 |
| 2. snapshot Redis → Kafka, against SCAN + DUMP + PTTL | %.1fs, %s keys/s | %.1fs, %s keys/s | %.2f | ≥ 0.85 |

cutover: backfill %.1fs of CPU, peak RSS %d MB; snapshot %.1fs of CPU, peak RSS %d MB.
Target Redis after the backfill: used_memory %.0f MB, %.2f× the direct copy's %.0f MB; CPU %.1fs against the direct copy's %.1fs. Source Redis CPU during the backfill: %.1fs.
Machine: %d CPUs, %s, %s; Redis, Kafka and cutover on the same machine; %s.
`, group(int64(total)),
			directTime.Seconds(), group(int64(rate(directTime))), run.wall.Seconds(), group(int64(rate(run.wall))), mb/run.wall.Seconds(), rate(run.wall)/rate(directTime),
			readTime.Seconds(), group(int64(rate(readTime))), snap.wall.Seconds(), group(int64(rate(snap.wall))), rate(snap.wall)/rate(readTime),
			run.cpu.Seconds(), run.rssMB, snap.cpu.Seconds(), snap.rssMB,
			float64(dstMem)/1e6, float64(dstMem)/float64(directMem), float64(directMem)/1e6, dstCPU, directCPU, srcCPU1-srcCPU0, runtime.NumCPU(), memTotal(), runtime.Version(), time.Now().UTC().Format("2006-01-02"))
		writeReport(b, report)
		writeJSON(b, "1. backfill Redis → Kafka → Redis", map[string]any{"keys": total, "baseline_s": directTime.Seconds(),
			"cutover_s": run.wall.Seconds(), "ratio": rate(run.wall) / rate(directTime), "cpu_s": run.cpu.Seconds(), "peak_rss_mb": run.rssMB,
			"mb_per_s": mb / run.wall.Seconds(), "target_used_memory_mb": float64(dstMem) / 1e6, "target_memory_ratio": float64(dstMem) / float64(directMem),
			"target_cpu_s": dstCPU, "direct_target_cpu_s": directCPU, "source_cpu_s": srcCPU1 - srcCPU0})
		writeJSON(b, "2. snapshot Redis → Kafka", map[string]any{"keys": total, "baseline_s": readTime.Seconds(),
			"cutover_s": snap.wall.Seconds(), "ratio": rate(snap.wall) / rate(readTime), "cpu_s": snap.cpu.Seconds(), "peak_rss_mb": snap.rssMB})
	}
}

// serverUsage is a Redis server's used_memory (bytes) and the CPU seconds
// its process has used so far.
func serverUsage(ctx context.Context, b *testing.B, c *goredis.Client) (int64, float64) {
	b.Helper()
	info, err := c.Info(ctx, "memory", "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var mem int64
	var cpu float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "used_memory":
			mem, _ = strconv.ParseInt(v, 10, 64)
		case "used_cpu_sys", "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			cpu += f
		}
	}
	return mem, cpu
}

type measured struct {
	wall  time.Duration
	cpu   time.Duration
	rssMB int64
}

// runMeasured runs cutover and returns its wall time, CPU time and peak RSS.
// With CUTOVER_BENCH_CPU_PROFILE set, cutover writes a CPU profile there
// (suffixed with the command and the time), and with
// CUTOVER_BENCH_HEAP_PROFILE a heap profile at the heap's peak; with
// CUTOVER_BENCH_OUTPUT set
// to a directory, it keeps cutover's output there.
func runMeasured(ctx context.Context, b *testing.B, args ...string) measured {
	b.Helper()
	if prof := os.Getenv("CUTOVER_BENCH_CPU_PROFILE"); prof != "" {
		args = append(args, "--cpu-profile", fmt.Sprintf("%s.%s-%d", prof, args[0], time.Now().Unix()))
	}
	if prof := os.Getenv("CUTOVER_BENCH_HEAP_PROFILE"); prof != "" {
		args = append(args, "--heap-profile", fmt.Sprintf("%s.%s-%d", prof, args[0], time.Now().Unix()))
	}
	cmd := exec.CommandContext(ctx, stack.Binary(b), args...)
	cmd.Env = append(append(os.Environ(), stack.LocalAWSEnv...), "NO_COLOR=1")
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(t0)
	if err != nil {
		b.Fatalf("cutover %v: %v\n%s", args[0], err, out)
	}
	if dir := os.Getenv("CUTOVER_BENCH_OUTPUT"); dir != "" {
		// What cutover printed, for a look at its progress or, with
		// GODEBUG=gctrace=1, its heap.
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.log", args[0], time.Now().UnixNano())), out, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return measured{wall: wall, cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), rssMB: ru.Maxrss / 1024}
}

// newRedisPipelineB is newRedisPipeline's flags for a benchmark.
func newRedisPipelineB(b *testing.B, src, dst *stack.Redis, extra ...string) []string {
	name := stack.Unique("bench")
	return append([]string{"--name", name, "--redis-addr", src.Addr, "--target-redis-addr", dst.Addr,
		"--kafka-brokers", strings.Join(stack.KafkaBrokers(b), ","), "--checkpoint-dir", b.TempDir(),
		"--progress-interval", "0"}, extra...)
}

// seedHashes writes n hashes of fields fields each.
func seedHashes(ctx context.Context, cl *goredis.Client, n, fields int) error {
	for start := 0; start < n; start += 500 {
		pipe := cl.Pipeline()
		for i := start; i < min(start+500, n); i++ {
			vals := make([]any, 0, 2*fields)
			for f := range fields {
				vals = append(vals, "field"+strconv.Itoa(f), strings.Repeat(strconv.Itoa(i%10), 20))
			}
			pipe.HSet(ctx, "hash:"+strconv.Itoa(i), vals...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// stringBytes is the size of seedStrings' keys and values: what a copy
// of them moves, before any encoding.
func stringBytes(n int) int64 {
	var sum int64
	for i := range n {
		sum += int64(len("bench:"+strconv.Itoa(i))) + 100
	}
	return sum
}

// hashBytes is the size of seedHashes' keys, fields and values.
func hashBytes(n, fields int) int64 {
	var sum int64
	for i := range n {
		sum += int64(len("hash:" + strconv.Itoa(i)))
		for f := range fields {
			sum += int64(len("field"+strconv.Itoa(f))) + 20
		}
	}
	return sum
}

// directCopy is the baseline: SCAN pages of 1,000, pipelined DUMP + PTTL
// on the source and pipelined RESTORE REPLACE (with the TTL) on dst, four
// pages in flight. With dst nil it only reads.
func directCopy(ctx context.Context, src, dst *goredis.Client) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	var cursor uint64
	for {
		keys, next, err := src.Scan(ctx, cursor, "", 1000).Result()
		if err != nil {
			return err
		}
		g.Go(func() error {
			pipe := src.Pipeline()
			dumps := make([]*goredis.StringCmd, len(keys))
			ttls := make([]*goredis.DurationCmd, len(keys))
			for i, k := range keys {
				dumps[i], ttls[i] = pipe.Dump(gctx, k), pipe.PTTL(gctx, k)
			}
			if _, err := pipe.Exec(gctx); err != nil {
				return err
			}
			if dst == nil {
				return nil
			}
			wp := dst.Pipeline()
			for i, k := range keys {
				ttl := ttls[i].Val()
				if ttl < 0 {
					ttl = 0
				}
				wp.RestoreReplace(gctx, k, ttl, dumps[i].Val())
			}
			_, err := wp.Exec(gctx)
			return err
		})
		if cursor = next; cursor == 0 {
			return g.Wait()
		}
	}
}

// writeReport appends a report to CUTOVER_BENCH_REPORT (default
// bench-report.md).
func writeReport(b *testing.B, report string) {
	path := os.Getenv("CUTOVER_BENCH_REPORT")
	if path == "" {
		path = "bench-report.md"
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(report + "\n"); err != nil {
		b.Fatal(err)
	}
	b.Logf("report appended to %s:\n%s", path, report)
}

// writeJSON appends one scenario's numbers, as a line of JSON, to
// CUTOVER_BENCH_JSON (default bench-report.jsonl), with the machine's size.
func writeJSON(b *testing.B, scenario string, numbers map[string]any) {
	path := os.Getenv("CUTOVER_BENCH_JSON")
	if path == "" {
		path = "bench-report.jsonl"
	}
	line, err := json.Marshal(map[string]any{"scenario": scenario, "numbers": numbers, "cpus": runtime.NumCPU(),
		"memory": memTotal(), "go": runtime.Version(), "date": time.Now().UTC().Format(time.RFC3339)})
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		b.Fatal(err)
	}
}
