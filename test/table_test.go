package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/cutover/cutover/test/chaos"
	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// newTablePipeline is a pipeline from the DynamoDB table src; extra names
// the target.
func newTablePipeline(t *testing.T, src string, extra ...string) pipelineArgs {
	t.Helper()
	name := stack.Unique(strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	ck := t.TempDir()
	return pipelineArgs{name: name, ckDir: ck, args: append([]string{
		"--name", name,
		"--source-table", src,
		"--source-endpoint", stack.DynamoDBEndpoint(t),
		"--kafka-brokers", strings.Join(stack.KafkaBrokers(t), ","),
		"--partitions", "4",
		"--checkpoint-dir", ck,
		"--progress-interval", "2s",
	}, extra...)}
}

// newOrders creates a source table of n seeded items.
func newOrders(t *testing.T, db *dynamodb.Client, n int, noStream ...bool) *datagen.Orders {
	t.Helper()
	o := &datagen.Orders{Table: stack.Unique("orders"), Items: n, Seed: 5, NoStream: len(noStream) > 0 && noStream[0]}
	createOrders(t, db, o)
	return o
}

// createOrders creates and fills the source table o describes.
func createOrders(t *testing.T, db *dynamodb.Client, o *datagen.Orders) {
	t.Helper()
	stack.DropTables(t, db, o.Table, o.Table+"-copy")
	// DynamoDB Local writes a table with a stream at well under 100
	// items a second on a busy machine: a bound for a state, not a speed.
	ctx := testCtx(t, 10*time.Minute)
	if err := o.CreateTable(ctx, db); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := o.Fill(ctx, db); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d items in %v", o.Items, time.Since(start).Round(time.Millisecond))
}

// writeTableWhile runs w until the returned function is called.
func writeTableWhile(t *testing.T, db *dynamodb.Client, w *datagen.OrdersWriter) (stop func() int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, db)
	}()
	return func() int64 {
		cancel()
		<-done
		return w.Ops()
	}
}

// TestTableToRedisAndDynamoDB copies a table of 10,000 items with a
// composite key and every attribute type to Redis (hashes, under a key
// template), to Redis again as DynamoDB JSON, and to a second table,
// while a writer puts, updates and deletes items during the scan and
// after it. Once the writer stops, reconcile finds no difference (both
// ways), and so does an item-by-item comparison written independently of
// cutover's mapping code.
func TestTableToRedisAndDynamoDB(t *testing.T) {
	t.Parallel()
	// Alone on DynamoDB Local: 10,000 items, three pipelines and a writer
	// slowed to 30 items/s beside another heavy test.
	stack.LoadDynamoDB(t, 2)
	db := dynamoClient(t)
	o := newOrders(t, db, 10_000)
	dst := stack.NewRedis(t)
	toHash := newTablePipeline(t, o.Table, "--target-redis-addr", dst.Addr, "--target-key-template", "order:{userId}:{orderId}")
	toJSON := newTablePipeline(t, o.Table, "--target-redis-addr", dst.Addr, "--target-redis-db", "2", "--target-item-format", "dynamodb-json")
	toTable := newTablePipeline(t, o.Table, "--dynamodb-endpoint", stack.DynamoDBEndpoint(t), "--create-table",
		"--dynamodb-table", o.Table+"-copy")

	w := &datagen.OrdersWriter{Orders: o, Keys: 12_000, Seed: 9, Rate: 150}
	stop := writeTableWhile(t, db, w)
	var procs []*stack.Proc
	for _, p := range []pipelineArgs{toHash, toJSON, toTable} {
		procs = append(procs, stack.Start(t, nil, append([]string{"replicate"}, p.args...)...))
	}
	// Writes during the scan and after it: every replicate finished its
	// scan (it logged "snapshot published"), then 300 more operations
	// (two seconds at 150 a second, however slow the machine).
	for _, proc := range procs {
		waitLog(t, proc, 3*time.Minute, func(s string) bool { return strings.Contains(s, "snapshot published") })
	}
	after := w.Ops() + 300
	for deadline := time.Now().Add(5 * time.Minute); w.Ops() < after; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the writer made %d operations in 5 minutes after the scans, want 300", w.Ops()-after+300)
		}
	}
	ops := stop()
	failed, lastErr := w.Errs()
	t.Logf("writer made %d operations (%d failed, the last with %v)", ops, failed, lastErr)
	for _, p := range []pipelineArgs{toHash, toJSON, toTable} {
		start := time.Now()
		waitConverged(t, p, 2*time.Minute)
		t.Logf("converged in %v", time.Since(start).Round(time.Millisecond))
	}
	for _, proc := range procs {
		if code := proc.Stop(); code != 0 {
			out, errOut := proc.Output()
			t.Fatalf("replicate exited %d on SIGTERM\n%s\n%s", code, out, errOut)
		}
	}
	src := tableItems(t, db, o.Table)
	if len(src) < 9000 {
		t.Fatalf("the source has %d items; the writer should have left about 10,000", len(src))
	}
	compareTables(t, src, tableItems(t, db, o.Table+"-copy"))
	compareRedisHashes(t, src, dst, 0)
	// The summary counts what was read: about the 10,000 items by the
	// scan, and at least the 300 changes made after every scan finished
	// from the stream.
	out, _ := procs[0].Output()
	if n := summaryCount(t, out, "items scanned"); n < 9000 || n > 12_000 {
		t.Errorf("the summary counts %d items scanned, want about 10,000:\n%s", n, out)
	}
	// Not all 300: the writer's keys outnumber the items, and a delete of
	// an item that is not there changes nothing and leaves no record.
	if n := summaryCount(t, out, "stream records"); n < 200 {
		t.Errorf("the summary counts %d stream records, want most of the 300 changes made after the scan:\n%s", n, out)
	}
}

// TestTableSourceSurvivesSIGKILL kills replicate from a table with SIGKILL
// during the scan (each time once the scan saved a new segment position)
// and during stream capture (once records were read), while a writer keeps
// changing items (unique values, a growing sequence number in each). Each
// restart resumes the scan or the stream from its checkpoints. The end
// state is exact, item by item; and the target table's own stream, on
// from its creation, shows no item going backwards and no deleted item
// coming back, write by write (chaos.CheckStream). The table is small: a
// DynamoDB Local table with a stream takes about 45 writes a second.
func TestTableSourceSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	stack.LoadDynamoDB(t, 1)
	db := dynamoClient(t)
	ctx := testCtx(t, 15*time.Minute)
	var start func() *stack.Proc
	streams, err := chaos.StreamsClient(ctx, stack.DynamoDBEndpoint(t))
	must(t, err)
	// make chaos kills it ten times, seven of them during the scan.
	scanKills := size(1, 7)
	w := &chaos.ItemWriter{Table: stack.Unique("items"), Keys: size(800, 4000), Seed: 10, Rate: 20, TTLShare: 0.1,
		MinTTL: time.Hour, MaxTTL: 2 * time.Hour}
	target := w.Table + "-copy"
	stack.DropTables(t, db, w.Table, target)
	must(t, w.CreateTable(ctx, db))
	filled := time.Now()
	must(t, w.Fill(ctx, db))
	t.Logf("wrote %d items in %v", w.Keys, time.Since(filled).Round(time.Millisecond))
	must(t, chaos.CreateTargetTable(ctx, db, target, chaos.ItemLayout))
	// The scan must outlast the first kills on any machine: it reads
	// pages of 25 small items at one read unit a second (DynamoDB Local
	// charges half a unit per 4 KB read), some 15 s for 800 items however
	// fast the machine.
	p := newTablePipeline(t, w.Table, "--dynamodb-endpoint", stack.DynamoDBEndpoint(t), "--dynamodb-table", target,
		"--scan-page-size", "25", "--read-capacity-per-second", "1")
	wctx, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); w.Run(wctx, db) }()
	defer func() { stopWriter(); <-writerDone }()
	args := append([]string{"replicate"}, p.args...)
	logged := func(msg string) func(string) bool { return func(s string) bool { return strings.Contains(s, msg) } }
	var procs []*stack.Proc
	start = func() *stack.Proc {
		proc := stack.Start(t, nil, args...)
		procs = append(procs, proc)
		return proc
	}
	t.Cleanup(func() {
		// A failure keeps every run's log, kills included, to be read.
		if dir := os.Getenv("CUTOVER_CHAOS_LOGS"); dir != "" && t.Failed() {
			for i, proc := range procs {
				out, errOut := proc.Output()
				_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.log", p.name, i)), []byte(errOut+"\n"+out), 0o600)
			}
		}
	})

	proc := start()
	since := time.Now()
	waitLog(t, proc, time.Minute, func(string) bool { return tableScanSavedSince(p, since) })
	proc.Kill()
	kills := 1
	for range scanKills {
		proc = start()
		since = time.Now()
		waitLog(t, proc, time.Minute, func(s string) bool {
			return strings.Contains(s, "resuming the table scan") || strings.Contains(s, "scan=false")
		})
		if _, errOut := proc.Output(); !strings.Contains(errOut, "resuming the table scan") {
			if kills < 2 {
				t.Fatalf("the scan finished before a restart could resume it:\n%s", errOut)
			}
			t.Logf("the scan finished after %d kills", kills)
			break
		}
		// Killed again once the resumed scan saved a position of its own,
		// or once it finished.
		waitLog(t, proc, time.Minute, func(s string) bool {
			return tableScanSavedSince(p, since) || strings.Contains(s, "snapshot published")
		})
		proc.Kill()
		kills++
	}
	for range 2 {
		proc = start()
		// During stream capture: once it read stream records after its
		// scan finished (or with none to do).
		waitLog(t, proc, 3*time.Minute, capturing)
		proc.Kill()
		kills++
	}
	proc = start()
	waitLog(t, proc, time.Minute, logged("scan=false"))
	waitLog(t, proc, 2*time.Minute, capturing)
	stopWriter()
	<-writerDone
	stopped := time.Now()
	failed, lastErr := w.Failed()
	t.Logf("writer made %d operations (%d failed: %v)", w.Ops(), failed, lastErr)

	// Item by item equal: nothing lost, resurrected or older at the end.
	var d chaos.Diff
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Second) {
		src, err := chaos.ReadTable(ctx, db, w.Table, chaos.ItemLayout)
		must(t, err)
		dst, err := chaos.ReadTable(ctx, db, target, chaos.ItemLayout)
		must(t, err)
		if d = chaos.CompareStates(src, dst, time.Now(), ttlTolerance); d.OK() || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%v after the writer stopped: %s", time.Since(stopped).Round(time.Second), d)
	var res chaos.Result
	res.AddDiff(d)
	// Reconcile with larger pages than the scan's: DynamoDB Local reads
	// the whole table for each page of a parallel Scan.
	check := p
	check.args = withFlags(p.args, "--scan-page-size", "2000")
	waitConverged(t, check, 5*time.Minute)
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d on SIGTERM", code)
	}
	// Every write to the target, in order: no regression, ever.
	if err := res.AddStream(chaos.CheckStream(ctx, db, streams, target, chaos.ItemLayout)); err != nil {
		t.Error(err)
	}
	res.Scenario, res.Faults, res.Events, res.Keys, res.Took = "source-sigkill-dynamodb", kills, w.Ops(), w.Keys, time.Since(begin)
	t.Log(res.String())
	if !res.OK() {
		t.Errorf("a guarantee broke:\n  %s", strings.Join(res.Examples, "\n  "))
	}
	writeChaosLine(t, res)
}

// capturing reports whether a replicate's log shows stream records read
// after its scan finished (or after it found no scan to do): its progress
// lines' stream_records count grew after that line.
func capturing(stderr string) bool {
	i := strings.Index(stderr, "snapshot published")
	if j := strings.Index(stderr, "scan=false"); i < 0 || j >= 0 && j < i {
		i = j
	}
	if i < 0 {
		return false
	}
	before := streamRecordsRe.FindAllStringSubmatch(stderr[:i], -1)
	after := streamRecordsRe.FindAllStringSubmatch(stderr[i:], -1)
	if len(after) == 0 {
		return false
	}
	from := int64(0)
	if len(before) > 0 {
		from = numberOfRow(before[len(before)-1][1])
	}
	return numberOfRow(after[len(after)-1][1]) > from
}

var streamRecordsRe = regexp.MustCompile(`stream_records=(\d+)`)

// tableScanSavedSince reports whether an unfinished table scan saved a
// segment position after since.
func tableScanSavedSince(p pipelineArgs, since time.Time) bool {
	since = since.Add(-time.Second) // checkpoint times have a coarse clock
	var pos struct {
		Last     []json.RawMessage `json:"last"`
		Finished bool              `json:"finished"`
	}
	found := false
	_ = filepath.WalkDir(p.ckDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "/scan.ckpt") {
			return nil
		}
		info, ierr := d.Info()
		raw, err := os.ReadFile(path)
		if err != nil || ierr != nil || !info.ModTime().After(since) || json.Unmarshal(raw, &pos) != nil || pos.Finished {
			return nil
		}
		for _, l := range pos.Last {
			if len(l) > 0 && string(l) != "null" {
				found = true
			}
		}
		return nil
	})
	return found
}

// TestTableWithoutStream: backfill copies a table whose stream is off;
// replicate refuses it with the command that turns the stream on.
func TestTableWithoutStream(t *testing.T) {
	t.Parallel()
	db := dynamoClient(t)
	o := newOrders(t, db, 500, true)
	dst := stack.NewRedis(t)
	p := newTablePipeline(t, o.Table, "--target-redis-addr", dst.Addr, "--target-item-format", "json")
	res := stack.Run(testCtx(t, 2*time.Minute), t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("backfill exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if n := summaryCount(t, res.Stdout, "items scanned"); n != 500 {
		t.Errorf("scanned %d items, want 500:\n%s", n, res.Stdout)
	}
	waitConverged(t, p, 30*time.Second)
	res = stack.Run(testCtx(t, time.Minute), t, append([]string{"replicate"}, p.args...)...)
	if res.Code != 1 || !strings.Contains(res.Stderr, "DynamoDB Streams is off on table "+o.Table) ||
		!strings.Contains(res.Stderr, "StreamViewType=NEW_AND_OLD_IMAGES") {
		t.Errorf("replicate without a stream: exit %d\n%s", res.Code, res.Stderr)
	}
}
