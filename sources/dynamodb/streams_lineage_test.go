package dynamodb

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/cutover/cutover/pipeline"
)

// The README promises shard lineage (a parent shard read to its end
// before its children) and expired iterators renewed from the last
// position. DynamoDB Local neither splits shards on demand nor lets an
// iterator age 15 minutes in a test, so these are shown over the fakes.

// pacedStreams answers GetRecords one record at a time, slowly on the
// shards in slow, and with ExpiredIteratorException on the call numbered
// expireOn[shard]; it records the sequence numbers iterators were asked
// after.
type pacedStreams struct {
	*fakeStreams
	slow     map[string]time.Duration
	expireOn map[string]int

	mu       sync.Mutex
	calls    map[string]int
	afterSeq []string
}

func newPacedStreams(f *fakeStreams) *pacedStreams {
	return &pacedStreams{fakeStreams: f, slow: map[string]time.Duration{}, expireOn: map[string]int{}, calls: map[string]int{}}
}

func (p *pacedStreams) GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error) {
	if in.ShardIteratorType == streamtypes.ShardIteratorTypeAfterSequenceNumber {
		p.mu.Lock()
		p.afterSeq = append(p.afterSeq, aws.ToString(in.SequenceNumber))
		p.mu.Unlock()
	}
	return p.fakeStreams.GetShardIterator(ctx, in, opts...)
}

func (p *pacedStreams) GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, opts ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	it := aws.ToString(in.ShardIterator)
	id, atText, _ := strings.Cut(it, "/")
	at, _ := strconv.Atoi(atText)
	p.mu.Lock()
	p.calls[id]++
	expire := p.calls[id] == p.expireOn[id]
	p.mu.Unlock()
	if expire {
		return nil, &streamtypes.ExpiredIteratorException{Message: aws.String("iterator expired")}
	}
	time.Sleep(p.slow[id])
	out, err := p.fakeStreams.GetRecords(ctx, in, opts...)
	if err == nil && len(out.Records) > 1 {
		out.Records = out.Records[:1]
		out.NextShardIterator = aws.String(id + "/" + strconv.Itoa(at+1))
	}
	return out, err
}

// runStream runs st until the publisher holds n events, or fails after
// ten seconds.
func runStream(t *testing.T, st *Stream, pub *fakePublisher, n int) []pipeline.Event {
	t.Helper()
	if _, err := st.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := len(pub.Events())
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("%d events published within 10s, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return pub.Events()
}

// itemName is the pk of an event's item (keys are DynamoDB JSON).
func itemName(e pipeline.Event) string {
	_, rest, _ := strings.Cut(string(e.Key), `"S":"`)
	name, _, _ := strings.Cut(rest, `"`)
	return name
}

// TestParentShardIsReadBeforeItsChild: after a shard split, the child
// holds the changes made after the parent's, and DynamoDB Streams keeps
// an item's changes in order only if the parent is read to its end
// before the child. Here the parent is slow to read (one record per call)
// and the child quick: every record of the parent is still published
// before the child's first.
func TestParentShardIsReadBeforeItsChild(t *testing.T) {
	t.Parallel()
	h := newHarness()
	h.streams.addShard("parent", "", true)
	h.streams.addShard("child", "parent", false)
	for i := range 10 {
		h.streams.put("parent", fmt.Sprint("p", i), false)
	}
	for i := range 3 {
		h.streams.put("child", fmt.Sprint("c", i), false)
	}
	// A restart in the middle of the split: both shards from their trim
	// horizon, neither read to its end.
	h.savePositions(t, streamPosition{StreamARN: fakeTableDef.StreamARN, Updated: time.Now(),
		Shards: map[string]*shardState{"parent": {Since: time.Now()}, "child": {Since: time.Now()}}})
	streams := newPacedStreams(h.streams)
	streams.slow["parent"] = 5 * time.Millisecond
	st := NewStream(streams, h.table, h.def, StreamOptions{Name: "p", Epoch: pipeline.NewEpoch(0), PollInterval: time.Millisecond,
		RefreshEvery: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}, h.pub, h.ck)
	var order []string
	for _, e := range runStream(t, st, h.pub, 13) {
		order = append(order, itemName(e))
	}
	want := []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "c0", "c1", "c2"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("published %v, want the parent's records, then the child's: %v", order, want)
	}
}

// TestExpiredIteratorResumesFromLastPosition: an iterator expires (15
// minutes unused, e.g. while publishing was blocked). The shard goes on
// after the last record read — nothing read twice, nothing skipped, and
// no gap (nothing was lost, so no re-scan).
func TestExpiredIteratorResumesFromLastPosition(t *testing.T) {
	t.Parallel()
	h := newHarness()
	h.streams.addShard("s1", "", false)
	for i := range 5 {
		h.streams.put("s1", fmt.Sprint("k", i), false)
	}
	h.savePositions(t, streamPosition{StreamARN: fakeTableDef.StreamARN, Updated: time.Now(),
		Shards: map[string]*shardState{"s1": {Since: time.Now()}}})
	streams := newPacedStreams(h.streams)
	streams.expireOn["s1"] = 3 // after k0 and k1 were read
	st := NewStream(streams, h.table, h.def, StreamOptions{Name: "p", Epoch: pipeline.NewEpoch(0), PollInterval: time.Millisecond,
		RefreshEvery: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}, h.pub, h.ck)
	var order []string
	for _, e := range runStream(t, st, h.pub, 5) {
		order = append(order, itemName(e))
	}
	if want := []string{"k0", "k1", "k2", "k3", "k4"}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("published %v, want %v", order, want)
	}
	if g := st.Stats().Gaps; g != 0 {
		t.Errorf("%d gaps counted for an expired iterator", g)
	}
	streams.mu.Lock()
	defer streams.mu.Unlock()
	if k1 := fmt.Sprintf("1%020d", 2); len(streams.afterSeq) != 1 || streams.afterSeq[0] != k1 {
		t.Errorf("iterators asked after %v, want one after k1's sequence number %s", streams.afterSeq, k1)
	}
}
