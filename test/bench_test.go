package test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/test/stack"
)

// BenchmarkReconcileRedis reconciles two identical Redis databases of
// CUTOVER_BENCH_KEYS keys (default 1,000,000 strings of 100 random bytes,
// 10% with an expiry) with cutover reconcile, and, in the same run, with
// a plain scan-and-compare of both sides (SCAN, pipelined GET + PTTL on
// each side, compare; then SCAN the target and EXISTS on the source for
// keys only in the target) as the baseline. It appends a markdown report to
// CUTOVER_BENCH_REPORT (default bench-report.md) and a JSON line to
// CUTOVER_BENCH_JSON, and writes cutover's CPU profile to
// CUTOVER_BENCH_CPU_PROFILE if set. make bench runs it (scenario 6); make
// test does not.
func BenchmarkReconcileRedis(b *testing.B) {
	keys := 1_000_000
	if v := os.Getenv("CUTOVER_BENCH_KEYS"); v != "" {
		keys, _ = strconv.Atoi(v)
	}
	src, dst := stack.NewRedis(b), stack.NewRedis(b)
	ctx := context.Background()
	start := time.Now()
	expireAt := time.Now().Add(6 * time.Hour)
	for _, r := range []*stack.Redis{src, dst} {
		if err := seedStrings(ctx, r.Client, keys, expireAt); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d keys on each side in %v", keys, time.Since(start).Round(time.Millisecond))

	for b.Loop() {
		// cutover reconcile, timed with its CPU and peak memory.
		args := []string{"reconcile", "--name", "bench", "--redis-addr", src.Addr, "--target-redis-addr", dst.Addr,
			"--kafka-brokers", strings.Join(stack.KafkaBrokers(b), ","), "--checkpoint-dir", b.TempDir(), "--output", "json"}
		if prof := os.Getenv("CUTOVER_BENCH_CPU_PROFILE"); prof != "" {
			args = append(args, "--cpu-profile", prof)
		}
		cmd := exec.CommandContext(ctx, stack.Binary(b), args...)
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		t0 := time.Now()
		out, err := cmd.Output()
		cutoverTime := time.Since(t0)
		if err != nil {
			b.Fatalf("reconcile: %v\n%s", err, out)
		}
		var rep reconcileReport
		if err := json.Unmarshal(out, &rep); err != nil || rep.Equal != int64(keys) {
			b.Fatalf("reconcile report %+v (%v)", rep, err)
		}
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())

		t0 = time.Now()
		n, err := scanAndCompare(ctx, src.Client, dst.Client)
		baseTime := time.Since(t0)
		if err != nil || n != keys {
			b.Fatalf("baseline compared %d keys: %v", n, err)
		}
		rate := func(d time.Duration) float64 { return float64(keys) / d.Seconds() }
		report := fmt.Sprintf(`| reconcile Redis ↔ Redis, %s keys | time | keys/s | ratio |
|---|---:|---:|---:|
| plain scan-and-compare (baseline) | %.1fs | %s | 1.00 |
| cutover reconcile | %.1fs | %s | %.2f |

cutover reconcile: %.1fs of CPU, peak RSS %d MB. Machine: %d CPUs, %s, Go %s, Redis from Debian, %s.
`, group(int64(keys)), baseTime.Seconds(), group(int64(rate(baseTime))), cutoverTime.Seconds(), group(int64(rate(cutoverTime))),
			rate(cutoverTime)/rate(baseTime), cpu.Seconds(), ru.Maxrss/1024, runtime.NumCPU(), memTotal(), runtime.Version(),
			time.Now().UTC().Format("2006-01-02"))
		b.ReportMetric(rate(cutoverTime), "keys/s")
		b.ReportMetric(rate(cutoverTime)/rate(baseTime), "ratio")
		writeReport(b, report)
		writeJSON(b, "6. reconcile Redis ↔ Redis", map[string]any{"keys": keys, "baseline_s": baseTime.Seconds(),
			"cutover_s": cutoverTime.Seconds(), "ratio": rate(cutoverTime) / rate(baseTime), "cpu_s": cpu.Seconds(), "peak_rss_mb": ru.Maxrss / 1024})
	}
}

// seedStrings writes n strings of 100 random bytes (the same on every
// call), every tenth expiring at expireAt, in pipelines of 1,000.
func seedStrings(ctx context.Context, cl *goredis.Client, n int, expireAt time.Time) error {
	rng := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, 100)
	for start := 0; start < n; start += 1000 {
		pipe := cl.Pipeline()
		for i := start; i < min(start+1000, n); i++ {
			for j := range val {
				val[j] = byte(rng.Uint32())
			}
			key := "bench:" + strconv.Itoa(i)
			if i%10 == 0 {
				pipe.Set(ctx, key, val, 0)
				pipe.ExpireAt(ctx, key, expireAt)
			} else {
				pipe.Set(ctx, key, val, 0)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// scanAndCompare is the baseline: SCAN the source; for each page, GET and
// PTTL every key on both sides in one pipeline each; compare.
func scanAndCompare(ctx context.Context, a, b *goredis.Client) (int, error) {
	n := 0
	var cursor uint64
	for {
		keys, next, err := a.Scan(ctx, cursor, "", 1000).Result()
		if err != nil {
			return n, err
		}
		read := func(cl *goredis.Client) ([]*goredis.StringCmd, []*goredis.DurationCmd, error) {
			pipe := cl.Pipeline()
			gets := make([]*goredis.StringCmd, len(keys))
			ttls := make([]*goredis.DurationCmd, len(keys))
			for i, k := range keys {
				gets[i], ttls[i] = pipe.Get(ctx, k), pipe.PTTL(ctx, k)
			}
			_, err := pipe.Exec(ctx)
			return gets, ttls, err
		}
		ga, ta, err := read(a)
		if err != nil {
			return n, err
		}
		gb, tb, err := read(b)
		if err != nil {
			return n, err
		}
		for i, k := range keys {
			if ga[i].Val() != gb[i].Val() || (ta[i].Val()-tb[i].Val()).Abs() > 2*time.Second {
				return n, fmt.Errorf("key %s differs", k)
			}
			n++
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	// The other way: keys only in the target.
	for {
		keys, next, err := b.Scan(ctx, cursor, "", 1000).Result()
		if err != nil {
			return n, err
		}
		pipe := a.Pipeline()
		exists := make([]*goredis.IntCmd, len(keys))
		for i, k := range keys {
			exists[i] = pipe.Exists(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return n, err
		}
		for i, k := range keys {
			if exists[i].Val() == 0 {
				return n, fmt.Errorf("key %s is only in the target", k)
			}
		}
		if cursor = next; cursor == 0 {
			return n, nil
		}
	}
}

// memTotal is the machine's memory, from /proc/meminfo.
func memTotal() string {
	raw, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "memory unknown"
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return fmt.Sprintf("%d GB RAM", (kb+512*1024)/(1024*1024))
		}
	}
	return "memory unknown"
}

// group writes n with thousands separators.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
