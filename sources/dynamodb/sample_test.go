package dynamodb

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline"
)

// sampledTable is fakeTable as Pages reads it.
type sampledTable struct{ *fakeTable }

func (sampledTable) BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	return &dynamodb.BatchGetItemOutput{}, nil
}

// A sample of a table no larger than asked, or of All, reads every item
// and is whole; a smaller one is not, and stands for the table's item
// count.
func TestSample(t *testing.T) {
	db := sampledTable{&fakeTable{items: map[string]string{"a": "1", "b": "2", "c": "3"}}}
	for name, c := range map[string]struct {
		opts  SampleOptions
		whole bool
	}{
		"all":             {opts: SampleOptions{All: true}, whole: true},
		"larger than it":  {opts: SampleOptions{Items: 10}, whole: true},
		"a part of it":    {opts: SampleOptions{Items: 1}},
		"paced, all read": {opts: SampleOptions{All: true, ReadCapacityPerSecond: 1000}, whole: true},
	} {
		t.Run(name, func(t *testing.T) {
			var read int
			res, err := Sample(context.Background(), db, fakeTableDef, c.opts, func(b *pipeline.Batch) int64 {
				read += len(b.Events)
				return int64(100 * len(b.Events))
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Items != 3 || res.Whole != c.whole || c.whole && read != 3 {
				t.Fatalf("%+v, %d read", res, read)
			}
		})
	}
}

// reconcile reads the table strongly consistent, in the pipeline's
// current epoch, and sizes its sample by the table's item count.
func TestCompareReadsInTheSavedEpoch(t *testing.T) {
	ctx := context.Background()
	db := sampledTable{&fakeTable{items: map[string]string{"a": "1", "b": "2", "c": "3"}}}
	ck := checkpoint.NewMemoryStore()
	if err := ck.Save(ctx, epochName("p", fakeTableDef.Name), []byte(`{"epoch":"5"}`)); err != nil {
		t.Fatal(err)
	}
	pages, count, err := Compare(ctx, db, fakeTableDef, ck, ScanOptions{Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if count != 3 || !pages.opts.ConsistentRead {
		t.Fatalf("count %d, consistent %v", count, pages.opts.ConsistentRead)
	}
	b, _, err := pages.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 3 || b.Events[0].Version.Epoch() != 5 {
		t.Fatalf("%d events, epoch %d; want 3 in the saved epoch 5", len(b.Events), b.Events[0].Version.Epoch())
	}
}
