package dynamodb

// Regression tests from an adversarial review of the backfill that follows
// the stream (363f8c8) and of waiting for a stream turned off (d141ad4).
// Each failed before its fix.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/cutover/cutover/pipeline"
)

// A backfill of a table with more than 16 open shards never returned:
// Stream.Run's shard goroutines send on `finished` (cap 16) after Run's
// loop has returned; wg.Wait in Run's defer waits for them forever.
func TestBackfillWithManyShardsReturns(t *testing.T) {
	for _, n := range []int{16, 17} {
		t.Run(fmt.Sprint(n), func(t *testing.T) { synctest.Test(t, func(t *testing.T) { backfillShards(t, n) }) })
	}
}

func backfillShards(t *testing.T, n int) {
	h := newHarness()
	for i := range n {
		h.streams.addShard(fmt.Sprintf("s%02d", i), "", false)
	}
	done := make(chan error, 1)
	go func() { done <- h.source(t, Mode{SnapshotOnly: true}).Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second): // settle is 1.1s here
		t.Fatalf("backfill of a table with %d open shards did not return within 15s", n)
	}
}

// The same for replicate on SIGTERM.
func TestReplicateWithManyShardsStops(t *testing.T) {
	h := newHarness()
	for i := range 20 {
		h.streams.addShard(fmt.Sprintf("s%02d", i), "", false)
	}
	src := h.source(t, Mode{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	waitFor(t, func() bool { return h.table.scanCount() == 1 && src.streamNow().Stats().Shards == 20 })
	cancel()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("replicate with 20 open shards did not stop within 15s of SIGTERM")
	}
}

// blockingTable is fakeTable whose Scan waits for release (or ctx), and
// whose DescribeTable can be overridden.
type blockingTable struct {
	*fakeTable
	release  chan struct{}
	entered  chan struct{}
	once     sync.Once
	mu       sync.Mutex
	describe func() (arn, view string)
}

func (b *blockingTable) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	if b.release != nil {
		b.once.Do(func() { close(b.entered) })
		select {
		case <-b.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return b.fakeTable.Scan(ctx, in, o...)
}

func (b *blockingTable) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, o ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	b.mu.Lock()
	f := b.describe
	b.mu.Unlock()
	if f == nil {
		return b.fakeTable.DescribeTable(ctx, in, o...)
	}
	arn, view := f()
	d := &ddbtypes.TableDescription{}
	if arn != "" {
		d.LatestStreamArn = aws.String(arn)
		d.StreamSpecification = &ddbtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: ddbtypes.StreamViewType(view)}
	}
	return &dynamodb.DescribeTableOutput{Table: d}, nil
}

// The stream disabled and enabled again while a backfill scans:
// before 363f8c8 the backfill did not follow the stream and finished;
// 363f8c8 made errStreamChanged cancel the scan and fail the backfill,
// though backfill's own switch meant to ignore it.
func TestBackfillSurvivesStreamReenabledDuringScan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.streams.addShard("s1", "", false)
		bt := &blockingTable{fakeTable: h.table, release: make(chan struct{}), entered: make(chan struct{})}
		src := h.sourceOver(t, bt, h.streams, Mode{SnapshotOnly: true})
		done := make(chan error, 1)
		go func() { done <- src.Run(context.Background()) }()
		<-bt.entered
		h.table.mu.Lock()
		h.table.arn = "arn:stream/2" // off and on again
		h.table.mu.Unlock()
		select {
		case err := <-done:
			close(bt.release)
			t.Fatalf("backfill failed when the stream was re-enabled during its scan: %v", err)
		case <-time.After(500 * time.Millisecond): // 50 looks at the table
		}
		close(bt.release)
		if err := <-done; err != nil {
			t.Fatalf("backfill: %v", err)
		}
	})
}

// replicateScanned runs replicate until ctx ends over a table with a
// stream of one shard, and returns once the table was scanned: the test
// then turns the table's stream (bt.describe) as it likes. Run's error
// arrives on done.
func replicateScanned(ctx context.Context, t *testing.T) (bt *blockingTable, done <-chan error) {
	t.Helper()
	h := newHarness()
	h.streams.addShard("s1", "", false)
	bt = &blockingTable{fakeTable: h.table}
	src := h.sourceOver(t, bt, h.streams, Mode{})
	ran := make(chan error, 1)
	go func() { ran <- src.Run(ctx) }()
	waitFor(t, func() bool { return h.table.scanCount() == 1 })
	return bt, ran
}

// Replicate follows a new stream whose view type is KEYS_ONLY:
// followNewStream fails, Run calls stop(err), which waits on streamErr
// that was already drained: Run never returned.
func TestReplicateNewStreamWithBadViewReturns(t *testing.T) {
	bt, done := replicateScanned(context.Background(), t)
	bt.mu.Lock()
	bt.describe = func() (string, string) { return "arn:stream/2", "KEYS_ONLY" }
	bt.mu.Unlock()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "KEYS_ONLY") {
			t.Fatalf("got %v, want the view type refused", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("replicate hangs after refusing the new stream's view type")
	}
}

// SIGTERM while followNewStream waits for a stream that is off
// again: Run never returned.
func TestSigtermWhileFollowingNewStreamThatIsOff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bt, done := replicateScanned(ctx, t)
	var mu sync.Mutex
	looks := 0
	bt.mu.Lock()
	bt.describe = func() (string, string) { // on (new) once, then off
		mu.Lock()
		defer mu.Unlock()
		looks++
		if looks == 1 {
			return "arn:stream/2", "NEW_AND_OLD_IMAGES"
		}
		return "", ""
	}
	bt.mu.Unlock()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return looks >= 3 }) // waiting in streamOn
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stopped while waiting: %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("replicate does not stop on SIGTERM while waiting for the new stream")
	}
}

// emptyTrimHorizon is fakeStreams where an iterator taken at TRIM_HORIZON
// first reads empty pages (DynamoDB Streams: "it might take multiple
// calls to get to a portion of the shard that contains stream records").
type emptyTrimHorizon struct {
	*fakeStreams
	mu    sync.Mutex
	pages int // empty pages still to answer per TRIM_HORIZON chain; <0 forever
}

func (e *emptyTrimHorizon) GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, o ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	out, err := e.fakeStreams.GetShardIterator(ctx, in, o...)
	if err == nil && in.ShardIteratorType == "TRIM_HORIZON" {
		out.ShardIterator = aws.String("TH:" + aws.ToString(out.ShardIterator))
	}
	return out, err
}

func (e *emptyTrimHorizon) GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, o ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	it := aws.ToString(in.ShardIterator)
	if rest, ok := strings.CutPrefix(it, "TH:"); ok {
		e.mu.Lock()
		empty := e.pages != 0
		if e.pages > 0 {
			e.pages--
		}
		e.mu.Unlock()
		if empty {
			return &dynamodbstreams.GetRecordsOutput{NextShardIterator: aws.String(it)}, nil
		}
		in2 := *in
		in2.ShardIterator = aws.String(rest)
		return e.fakeStreams.GetRecords(ctx, &in2, o...)
	}
	return e.fakeStreams.GetRecords(ctx, in, o...)
}

// A quiet shard re-opened at its trim horizon reads empty pages
// first; readEmpty moves its From to now although the chain has not
// reached the position, and the records written after the position while
// cutover was stopped were skipped by the next run: lost. From now moves
// only on a chain that started at the position (LATEST).
func TestTrimHorizonEmptyPagesLoseNoRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.streams.addShard("s1", "", false)
		// Run 1: replicate takes LATEST on quiet s1 (From = F1) and stops.
		if err := h.runFor(t, h.source(t, Mode{}), func() bool { return h.table.scanCount() == 1 }); err != nil {
			t.Fatal(err)
		}
		// Written while cutover is stopped: after the position.
		h.streams.put("s1", "lost", false)
		// The record must be older than Settle when run 2 reads: wait for the
		// clock (Settle is 1.1 s here, 15 s in production; the clock is
		// synctest's, so the wait takes no real time).
		time.Sleep(2500 * time.Millisecond)

		// Run 2: a backfill ("backfill again"); s1 is opened at its trim
		// horizon and DynamoDB answers empty pages for a while.
		ets := &emptyTrimHorizon{fakeStreams: h.streams, pages: -1}
		src := h.sourceOver(t, h.table, ets, Mode{SnapshotOnly: true})
		if err := src.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Logf("position after the backfill: %+v", h.streamPos(t).Shards["s1"])

		// Run 3: replicate, DynamoDB answering normally.
		src3 := h.source(t, Mode{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- src3.Run(ctx) }()
		// The record is published by the backfill (which now continues at the
		// saved iterator) or by this replicate: never skipped.
		waitFor(t, func() bool {
			st := src3.streamNow().Stats()
			return st.Records+st.Skipped > 0 || hasEvent(h.pub, "lost", pipeline.OpUpsert)
		})
		cancel()
		<-done
		if !hasEvent(h.pub, "lost", pipeline.OpUpsert) {
			t.Fatalf("a change written after the saved position was never published (skipped %d)", src3.streamNow().Stats().Skipped)
		}
	})
}
