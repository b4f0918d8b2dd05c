package test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/logging"
	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/test/stack"
)

// The round trip both benchmarks below give DynamoDB: about what a real
// endpoint answers a small write in, from inside its region.
const (
	sinkRTT       = 5 * time.Millisecond
	sinkRTTJitter = time.Millisecond
)

// BenchmarkSinkLatencyDynamoDB measures, in one run, Redis → Kafka →
// DynamoDB Local behind a Toxiproxy that delays every response by 5 ms
// (±1 ms), the way a real DynamoDB endpoint's round trip does. On loopback
// DynamoDB Local answers in well under a millisecond, which hides how many
// writes the sink keeps in flight; 5 ms does not. Through the same proxy:
//
//   - the baseline, a direct copy: SCAN, pipelined GET + PTTL,
//     BatchWriteItem of 25 items, 16 batches in flight. It runs before and
//     after cutover and counts as the mean of the two (DynamoDB Local
//     slows down with use);
//   - a direct copy with one conditional PutItem per key (what cutover
//     writes), 128 in flight: what DynamoDB Local itself takes of such
//     writes on this machine, a ceiling no sink can pass here;
//   - cutover backfill with default settings (the table exists; no
//     --create-table, no --sink-concurrency), timed from start to exit,
//     and from its first write request to its last as they pass the proxy
//     (start-up — connecting, creating the topic, joining the group — is
//     not the sink's speed, and weighs heavily on a run this short).
//
// The data is CUTOVER_BENCH_SINK_LATENCY_KEYS strings of 100 bytes
// (default 20,000; 10% with a TTL). Every copy writes a fresh table and
// checks it holds every key. It appends a table to CUTOVER_BENCH_REPORT and
// a line to CUTOVER_BENCH_JSON (make bench), and passes
// CUTOVER_BENCH_CPU_PROFILE on to cutover.
func BenchmarkSinkLatencyDynamoDB(b *testing.B) {
	n := benchEnvInt(b, "CUTOVER_BENCH_SINK_LATENCY_KEYS", 20_000)
	ctx := context.Background()
	db := stack.DynamoDB(b)
	src := stack.NewRedis(b)
	if err := seedStrings(ctx, src.Client, n, time.Now().Add(6*time.Hour)); err != nil {
		b.Fatal(err)
	}
	slowEndpoint, writes := latencyProxy(b, strings.TrimPrefix(stack.DynamoDBEndpoint(b), "http://"), sinkRTT, sinkRTTJitter)
	slow := dynamoDBAt(b, slowEndpoint)
	stack.Binary(b) // built now, not while cutover is timed

	for b.Loop() {
		// copyTo times copy into a fresh table and checks the result.
		copyTo := func(prefix string, copy func(table string) error) time.Duration {
			table := stack.Unique(prefix)
			stack.DropTables(b, db, table)
			createKeyTable(ctx, b, db, table, false)
			t0 := time.Now()
			if err := copy(table); err != nil {
				b.Fatal(err)
			}
			took := time.Since(t0)
			checkItemCount(ctx, b, db, table, n)
			dropTableNow(ctx, b, db, table)
			return took
		}
		batched := func(table string) error { return directToDynamoDB(ctx, src.Client, slow, table) }
		before := copyTo("bench-rtt-direct", batched)
		putTime := copyTo("bench-rtt-put", func(table string) error { return directPutItems(ctx, src.Client, slow, table, 128) })
		writes.reset()
		var run measured
		var started time.Time
		copyTo("bench-rtt-cutover", func(table string) error {
			runCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			started = time.Now()
			run = runMeasured(runCtx, b, "backfill", "--name", stack.Unique("bench"), "--redis-addr", src.Addr,
				"--kafka-brokers", strings.Join(stack.KafkaBrokers(b), ","), "--checkpoint-dir", b.TempDir(),
				"--progress-interval", "0", "--dynamodb-endpoint", slowEndpoint, "--dynamodb-table", table)
			return nil
		})
		requests, first, last := writes.seen()
		if requests == 0 || !last.After(first) {
			b.Fatalf("the proxy saw %d write requests of cutover's: the write window is unknown", requests)
		}
		window := last.Sub(first)
		after := copyTo("bench-rtt-direct", batched)
		baseline := (before + after) / 2

		rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
		ratio, windowRatio := rate(run.wall)/rate(baseline), rate(window)/rate(baseline)
		b.ReportMetric(rate(run.wall), "keys/s")
		b.ReportMetric(ratio, "ratio")
		b.ReportMetric(windowRatio, "write-window-ratio")
		writeReport(b, fmt.Sprintf(`| DynamoDB Local at %v (±%v) per response, %s keys | time | keys/s | ratio | target |
|---|---:|---:|---:|---:|
| direct copy, BatchWriteItem of 25, 16 in flight (baseline) | %.1fs | %s | 1.00 | |
| direct copy, one conditional PutItem per key, 128 in flight (DynamoDB Local's ceiling for such writes) | %.1fs | %s | %.2f | |
| 8a. cutover backfill, default settings, start to exit | %.1fs | %s | %.2f | ≥ 0.8 |
| 8a. the same run, its first write request to its last at the proxy | %.1fs | %s | %.2f | |

Toxiproxy delays every DynamoDB response by %v ± %v. The baseline is the mean of a run before cutover's and one after it (%.1fs and %.1fs); every copy reads Redis (SCAN, pipelined GET + PTTL) and writes a fresh table, checked to hold every key.
cutover: %s write requests; %.1fs passed before the first (connecting, creating the topic, joining the consumer group) and %.1fs after the last (committing, stopping); %.1fs of CPU, peak RSS %d MB.
Machine: %d CPUs, %s, %s; DynamoDB Local (in memory), Redis, Kafka, the proxy and cutover on the same machine; %s.
`, sinkRTT, sinkRTTJitter, group(int64(n)),
			baseline.Seconds(), group(int64(rate(baseline))),
			putTime.Seconds(), group(int64(rate(putTime))), rate(putTime)/rate(baseline),
			run.wall.Seconds(), group(int64(rate(run.wall))), ratio,
			window.Seconds(), group(int64(rate(window))), windowRatio,
			sinkRTT, sinkRTTJitter, before.Seconds(), after.Seconds(),
			group(requests), first.Sub(started).Seconds(), started.Add(run.wall).Sub(last).Seconds(), run.cpu.Seconds(), run.rssMB,
			runtime.NumCPU(), memTotal(), runtime.Version(), time.Now().UTC().Format("2006-01-02")))
		writeJSON(b, "8a. backfill Redis → Kafka → DynamoDB at 5 ms RTT", map[string]any{"keys": n, "rtt_ms": sinkRTT.Milliseconds(),
			"baseline_s": baseline.Seconds(), "baseline_before_s": before.Seconds(), "baseline_after_s": after.Seconds(),
			"baseline_keys_per_s": rate(baseline), "put_ceiling_s": putTime.Seconds(), "put_ceiling_keys_per_s": rate(putTime),
			"cutover_s": run.wall.Seconds(), "cutover_keys_per_s": rate(run.wall), "ratio": ratio,
			"write_window_s": window.Seconds(), "write_window_keys_per_s": rate(window), "write_window_ratio": windowRatio,
			"write_requests": requests, "startup_s": first.Sub(started).Seconds(), "cpu_s": run.cpu.Seconds(), "peak_rss_mb": run.rssMB})
	}
}

// directPutItems copies the source as cutover's DynamoDB sink writes it:
// one conditional PutItem per key (the same attributes, a version and the
// sink's condition), inFlight at a time, after SCAN and pipelined GET +
// PTTL.
func directPutItems(ctx context.Context, src *goredis.Client, db *dynamodb.Client, table string, inFlight int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(inFlight)
	version := &types.AttributeValueMemberB{Value: []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}}
	err := scanStrings(ctx, src, func(_ []string, items []map[string]types.AttributeValue) {
		for _, item := range items {
			item["cutover_version"] = version
			g.Go(func() error {
				_, err := db.PutItem(gctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item,
					ConditionExpression:       aws.String("attribute_not_exists(#v) OR #v < :v"),
					ExpressionAttributeNames:  map[string]string{"#v": "cutover_version"},
					ExpressionAttributeValues: map[string]types.AttributeValue{":v": version}})
				return err
			})
		}
	})
	if werr := g.Wait(); err == nil {
		err = werr
	}
	return err
}

// BenchmarkSinkCeilingDynamoDB measures what one sink worker can do when
// DynamoDB is never the limit: a stub DynamoDB endpoint (in this process)
// answers every PutItem after a fixed 5 ms, successfully, with no capacity
// limit, so the number measures cutover, not DynamoDB Local's CPU.
//
// CUTOVER_BENCH_SINK_EVENTS strings of 100 bytes (default 200,000; 10%
// with a TTL) are first published to a topic by `cutover replicate
// --snapshot-only --no-sink`; then one `cutover sink` with default settings
// applies them to the stub. The rate is timed at the stub, from the first
// PutItem's arrival to the last one's answer; cutover's CPU over the same
// window comes from /proc/<pid>/stat, its peak RSS from its rusage. The
// stub counts every write and the run fails unless every key was written
// exactly once, conditionally: a fast run that dropped or repeated writes
// measures nothing. It appends a table to CUTOVER_BENCH_REPORT and a line
// to CUTOVER_BENCH_JSON (make bench), and passes CUTOVER_BENCH_CPU_PROFILE
// on to both cutover processes.
func BenchmarkSinkCeilingDynamoDB(b *testing.B) {
	n := benchEnvInt(b, "CUTOVER_BENCH_SINK_EVENTS", 200_000)
	ctx := context.Background()
	src := stack.NewRedis(b)
	if err := seedStrings(ctx, src.Client, n, time.Now().Add(6*time.Hour)); err != nil {
		b.Fatal(err)
	}
	brokers := strings.Join(stack.KafkaBrokers(b), ",")

	for b.Loop() {
		stub := newDynamoDBStub(b, "bench-stub", n, sinkRTT)
		name, dir := stack.Unique("bench-ceiling"), b.TempDir()
		target := []string{"--name", name, "--kafka-brokers", brokers, "--checkpoint-dir", dir, "--progress-interval", "0",
			"--dynamodb-endpoint", stub.url, "--dynamodb-table", stub.table}
		pubCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		pub := runMeasured(pubCtx, b, append([]string{"replicate", "--snapshot-only", "--no-sink", "--redis-addr", src.Addr}, target...)...)
		cancel()
		if published := topicRecords(ctx, b, "cutover."+name); published < int64(n) {
			b.Fatalf("the topic holds %d records after the snapshot, want at least %d", published, n)
		}
		if got := stub.writes.Load(); got != 0 {
			b.Fatalf("the stub received %d writes before the sink started", got)
		}

		run := runSinkUntil(b, stub, 5*time.Minute, append([]string{"sink"}, target...)...)
		writes, keys, unconditional, failure := stub.counts()
		if failure != "" {
			b.Fatalf("stub DynamoDB: %s", failure)
		}
		if writes != int64(n) || keys != n || unconditional != 0 {
			b.Fatalf("the stub received %d writes of %d distinct keys (%d unconditional) for %d events: each key must be written once, conditionally",
				writes, keys, unconditional, n)
		}
		window := stub.lastDone.Sub(stub.firstAt)
		perSec := float64(n) / window.Seconds()
		cpuPerWrite := run.windowCPU / time.Duration(n)
		b.ReportMetric(perSec, "writes/s")
		b.ReportMetric(float64(cpuPerWrite.Nanoseconds())/1000, "cpu-µs/write")
		writeReport(b, fmt.Sprintf(`| one sink worker against a stub DynamoDB answering every PutItem after %v, %s events | writes/s | CPU per write | peak RSS | target |
|---|---:|---:|---:|---:|
| 8b. cutover sink → stub, default settings | %s | %.0f µs | %d MB | ≥ 20,000 writes/s, ≤ 128 MB |

Timed at the stub from the first PutItem's arrival to the last one's answer (%.1fs); every key was written once, conditionally. At most %d writes were in flight; cutover opened %d connections to the stub.
cutover sink: its first write came %.1fs after it started (connecting, joining the consumer group); %.1fs of CPU over the writes, %.1fs in all. Publishing the events beforehand (replicate --snapshot-only --no-sink) took %.1fs.
The stub runs in the benchmark's process (%.1fs of CPU over the writes) and shares the machine's CPUs with cutover and Kafka. Machine: %d CPUs, %s, %s; %s.
`, sinkRTT, group(int64(n)), group(int64(perSec)), float64(cpuPerWrite.Nanoseconds())/1000, run.rssMB,
			window.Seconds(), stub.maxInFlight.Load(), stub.conns.Load(),
			stub.firstAt.Sub(run.started).Seconds(), run.windowCPU.Seconds(), run.cpu.Seconds(), pub.wall.Seconds(), run.stubCPU.Seconds(),
			runtime.NumCPU(), memTotal(), runtime.Version(), time.Now().UTC().Format("2006-01-02")))
		writeJSON(b, "8b. sink ceiling against a 5 ms stub", map[string]any{"events": n, "rtt_ms": sinkRTT.Milliseconds(),
			"writes_per_s": perSec, "window_s": window.Seconds(), "cpu_us_per_write": float64(cpuPerWrite.Nanoseconds()) / 1000,
			"startup_s": stub.firstAt.Sub(run.started).Seconds(), "window_cpu_s": run.windowCPU.Seconds(), "stub_cpu_s": run.stubCPU.Seconds(), "cpu_s": run.cpu.Seconds(), "peak_rss_mb": run.rssMB,
			"max_in_flight": stub.maxInFlight.Load(), "connections": stub.conns.Load(), "publish_s": pub.wall.Seconds()})
	}
}

// benchEnvInt is the integer in the environment variable name, or def.
func benchEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

// dynamoDBAt is a client of a DynamoDB endpoint with the local stack's
// credentials, as stack.DynamoDB, that keeps up to 256 idle connections
// open (the SDK's default keeps 10: more writes in flight than that would
// open a new connection for most of them).
func dynamoDBAt(b *testing.B, endpoint string) *dynamodb.Client {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) { t.MaxIdleConnsPerHost = 256 })
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")),
		config.WithLogger(logging.Nop{}), config.WithHTTPClient(httpClient))
	if err != nil {
		b.Fatal(err)
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// checkItemCount fails b unless table holds want items.
func checkItemCount(ctx context.Context, b *testing.B, db *dynamodb.Client, table string, want int) {
	var got int32
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), Select: types.SelectCount})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			b.Fatalf("count the items of %s: %v", table, err)
		}
		got += page.Count
	}
	if int(got) != want {
		b.Fatalf("table %s holds %d items, want %d", table, got, want)
	}
}

// dropTableNow deletes a table at once: DynamoDB Local slows down as
// tables pile up (stack.DropTables only deletes them when b ends).
func dropTableNow(ctx context.Context, b *testing.B, db *dynamodb.Client, table string) {
	if _, err := db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
		b.Fatalf("delete table %s: %v", table, err)
	}
}

// topicRecords is how many records a topic holds (the sum of its
// partitions' end offsets).
func topicRecords(ctx context.Context, b *testing.B, topic string) int64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers(b)...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		b.Fatalf("end offsets of topic %s: %v", topic, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// sinkRun is what runSinkUntil measured.
type sinkRun struct {
	measured
	started   time.Time
	windowCPU time.Duration // from the stub's first write to its last
	stubCPU   time.Duration // this process' (the stub's) over the same time
}

// runSinkUntil runs cutover with args until the stub has received every
// write it expects (at most within limit), then stops it with SIGTERM and
// returns its CPU time over the writes and in all, and its peak RSS. It
// fails b if cutover exits by itself, fails, or does not finish in time.
func runSinkUntil(b *testing.B, stub *dynamoDBStub, limit time.Duration, args ...string) sinkRun {
	b.Helper()
	if prof := os.Getenv("CUTOVER_BENCH_CPU_PROFILE"); prof != "" {
		args = append(args, "--cpu-profile", fmt.Sprintf("%s.%s-%d", prof, args[0], time.Now().Unix()))
	}
	cmd := exec.Command(stack.Binary(b), args...)
	cmd.Env = append(append(os.Environ(), stack.LocalAWSEnv...), "NO_COLOR=1")
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	run := sinkRun{started: time.Now()}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start cutover %s: %v", args[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	wait := func(what string, ch <-chan struct{}) {
		select {
		case <-ch:
		case <-stub.failed:
			_ = cmd.Process.Kill()
			<-exited
			stub.mu.Lock()
			defer stub.mu.Unlock()
			b.Fatalf("stub DynamoDB: %s\n%s", stub.failure, out.tail())
		case err := <-exited:
			b.Fatalf("cutover %s exited (%v) before %s; it wrote %d of %d:\n%s", args[0], err, what, stub.writes.Load(), stub.expect, out.tail())
		case <-deadline.C:
			_ = cmd.Process.Kill()
			<-exited
			b.Fatalf("cutover %s did not finish within %v: the stub received %d of %d writes:\n%s", args[0], limit, stub.writes.Load(), stub.expect, out.tail())
		}
	}
	wait("its first write", stub.first)
	cpu0, self0 := procCPU(b, cmd.Process.Pid), selfCPU(b)
	wait("its last write", stub.done)
	run.windowCPU, run.stubCPU = procCPU(b, cmd.Process.Pid)-cpu0, selfCPU(b)-self0
	run.wall = time.Since(run.started)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			b.Fatalf("cutover %s, stopped with SIGTERM: %v\n%s", args[0], err, out.tail())
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-exited
		b.Fatalf("cutover %s did not stop within a minute of SIGTERM:\n%s", args[0], out.tail())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	run.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	run.rssMB = ru.Maxrss / 1024
	return run
}

// procCPU is the user and system CPU time a running process has used so
// far, from /proc/<pid>/stat (in clock ticks of 1/100 s, Linux's USER_HZ).
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatalf("read cutover's CPU time: %v", err)
	}
	// The command name (field 2) may hold spaces; fields count from after it.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	if len(f) < 13 {
		b.Fatalf("unexpected /proc/%d/stat: %s", pid, raw)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("unexpected /proc/%d/stat: %s", pid, raw)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// selfCPU is the user and system CPU time this process has used so far.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// lockedBuffer collects a process' output from two pipes at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// tail is the last 40 lines written.
func (l *lockedBuffer) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return stack.Tail(l.buf.String(), 40)
}
