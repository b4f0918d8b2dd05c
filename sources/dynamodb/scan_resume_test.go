package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline"
)

// pagedTable is a table in memory that Scan reads in pages of Limit
// items, in key order, from after ExclusiveStartKey, as DynamoDB does;
// every item is in segment 0. It keeps the start key of each call.
type pagedTable struct {
	fakeTable
	mu     sync.Mutex
	starts []string // the pk each Scan call started after ("" from the start)
}

func newPagedTable(n int) *pagedTable {
	p := &pagedTable{fakeTable: fakeTable{items: map[string]string{}}}
	for i := range n {
		p.items[fmt.Sprintf("k%02d", i)] = "1"
	}
	return p
}

func (p *pagedTable) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	out := &dynamodb.ScanOutput{}
	if aws.ToInt32(in.Segment) != 0 {
		return out, nil
	}
	after := ""
	if k, ok := in.ExclusiveStartKey["pk"].(*ddbtypes.AttributeValueMemberS); ok {
		after = k.Value
	}
	p.mu.Lock()
	p.starts = append(p.starts, after)
	p.mu.Unlock()
	p.fakeTable.mu.Lock()
	defer p.fakeTable.mu.Unlock()
	var keys []string
	for k := range p.items {
		if k > after {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if limit := int(aws.ToInt32(in.Limit)); limit > 0 && len(keys) > limit {
		keys = keys[:limit]
		out.LastEvaluatedKey = map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: keys[limit-1]}}
	}
	for _, k := range keys {
		out.Items = append(out.Items, map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: k}, "v": &ddbtypes.AttributeValueMemberS{Value: p.items[k]}})
	}
	return out, nil
}

// stopAfter is a publisher that fails from its n-th batch on, as Kafka
// does when the process is stopped: nothing from there is durable.
type stopAfter struct {
	*fakePublisher
	mu    sync.Mutex
	n     int
	calls int
}

var errStopped = errors.New("stopped")

func (s *stopAfter) Publish(ctx context.Context, b pipeline.Batch, onDurable func()) error {
	s.mu.Lock()
	s.calls++
	stop := s.calls >= s.n
	s.mu.Unlock()
	if stop {
		return errStopped
	}
	return s.fakePublisher.Publish(ctx, b, onDurable)
}

// A scan stopped in its middle resumes after the last page Kafka
// acknowledged, reading the items before it no more (the README's resume
// guarantee for a backfill): the saved LastEvaluatedKey is the
// ExclusiveStartKey of the next run's first call. A scan of another
// version epoch is not resumed: its rows would carry the old epoch.
func TestScanResumesAfterTheLastAcknowledgedPage(t *testing.T) {
	scan := func(db scanAPI, pub pipeline.Publisher, ck checkpoint.Store, epoch uint64) *Scan {
		return NewScan(db, fakeTableDef, ScanOptions{Name: "p", Segments: 1, PageSize: 2, Epoch: pipeline.NewEpoch(epoch), Logger: slog.New(slog.DiscardHandler)}, pub, ck)
	}
	names := func(pub *fakePublisher) []string {
		var out []string
		for _, e := range pub.Events() {
			out = append(out, itemName(e))
		}
		return out
	}
	db := newPagedTable(7)
	ck := checkpoint.NewMemoryStore()
	first := &stopAfter{fakePublisher: &fakePublisher{}, n: 3} // pages 1 and 2 acknowledged
	if err := scan(db, first, ck, 0).Run(context.Background()); !errors.Is(err, errStopped) {
		t.Fatalf("run 1: %v, want it stopped", err)
	}
	if got, want := names(first.fakePublisher), []string{"k00", "k01", "k02", "k03"}; !eq(got, want) {
		t.Fatalf("run 1 published %v, want %v", got, want)
	}

	t.Run("resumed in the same epoch", func(t *testing.T) {
		ck := cloneStore(t, ck)
		db.starts = nil
		pub := &fakePublisher{}
		s := scan(db, pub, ck, 0)
		if err := s.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got, want := names(pub), []string{"k04", "k05", "k06"}; !eq(got, want) {
			t.Errorf("run 2 published %v, want %v: only what run 1 did not acknowledge", got, want)
		}
		if db.starts[0] != "k03" {
			t.Errorf("run 2 started after %q, want after k03, the last key acknowledged", db.starts[0])
		}
		if p := s.Progress(); !p.Resumed || !p.Done || p.Items != 7 {
			t.Errorf("progress %+v, want resumed, done, 7 items", p)
		}
	})
	t.Run("another epoch starts over", func(t *testing.T) {
		ck := cloneStore(t, ck)
		pub := &fakePublisher{}
		s := scan(db, pub, ck, 1)
		if err := s.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(pub.Events()); n != 7 || s.Progress().Resumed {
			t.Errorf("run 2 in epoch 1 published %d items (resumed: %v), want all 7 afresh", n, s.Progress().Resumed)
		}
	})
}

// cloneStore copies the scan's checkpoint into a new store, so that each
// subtest resumes from the same saved position.
func cloneStore(t *testing.T, from *checkpoint.MemoryStore) *checkpoint.MemoryStore {
	t.Helper()
	ctx := context.Background()
	to := checkpoint.NewMemoryStore()
	names, err := from.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		raw, err := from.Load(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := to.Save(ctx, n, raw); err != nil {
			t.Fatal(err)
		}
	}
	return to
}
