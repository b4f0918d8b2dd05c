package dynamodb

import (
	"context"
	"fmt"
	"math"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"golang.org/x/time/rate"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline"
)

// sampleAPI is what Sample calls of DynamoDB; *dynamodb.Client implements
// it.
type sampleAPI interface {
	pagesAPI
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// SampleOptions say what Sample reads.
type SampleOptions struct {
	// Items is about how many items to read, by random Scan segments;
	// All reads every item instead.
	Items int64
	All   bool
	// Scan says how to read: its Name, Segments, PageSize, ConsistentRead
	// and Endpoint apply.
	Scan ScanOptions
	// ReadCapacityPerSecond paces the reads as the backfill's scan; 0
	// does not limit.
	ReadCapacityPerSecond float64
}

// SampleResult is what a sample stands for.
type SampleResult struct {
	// Items is the table's item count (DynamoDB updates it about every
	// six hours).
	Items int64
	// Whole is set when the sample is every item (All, or a table no
	// larger than Items): counts made of it are exact.
	Whole bool
}

// Sample reads a random sample of table's items as upsert events (see
// Pages.SetSample), publishing nothing, and hands each page to visit: what
// `cutover plan` measures. visit returns the bytes the page's events take;
// the reads are paced by them, at 4 KB a read unit (8 KB for an
// eventually consistent read). The events are larger than the items
// (base64, JSON), so the pace errs on the slow side.
func Sample(ctx context.Context, db sampleAPI, table Table, opts SampleOptions, visit func(*pipeline.Batch) int64) (SampleResult, error) {
	count, err := itemCount(ctx, db, table.Name)
	if err != nil {
		return SampleResult{}, err
	}
	res := SampleResult{Items: count}
	scan := opts.Scan
	scan.Epoch = pipeline.NewEpoch(0)
	pages := NewPages(db, table, scan)
	res.Whole = opts.All || res.Items <= opts.Items
	if !res.Whole {
		pages.SetSample(float64(opts.Items) / float64(res.Items))
	}
	var limiter *rate.Limiter
	if rcu := opts.ReadCapacityPerSecond; rcu > 0 {
		limiter = rate.NewLimiter(rate.Limit(rcu), max(1, int(math.Ceil(rcu))))
	}
	unit := 8192.0
	if scan.ConsistentRead {
		unit = 4096
	}
	for done := false; !done; {
		var b pipeline.Batch
		if b, done, err = pages.Next(ctx); err != nil {
			return SampleResult{}, err
		}
		units := int(math.Ceil(float64(visit(&b)) / unit))
		if limiter != nil && units > 0 {
			if err := limiter.WaitN(ctx, min(units, limiter.Burst())); err != nil {
				return SampleResult{}, err
			}
		}
	}
	return res, nil
}

// Compare opens table for reconcile's comparison: a strongly consistent
// parallel Scan (opts: Name, Segments, PageSize and Endpoint apply) whose
// items carry the pipeline's current epoch (from its checkpoint in ck).
// It returns it with the table's item count (updated by DynamoDB about
// every six hours).
func Compare(ctx context.Context, db sampleAPI, table Table, ck checkpoint.Store, opts ScanOptions) (*Pages, int64, error) {
	epoch, err := LoadEpoch(ctx, ck, opts.Name, table.Name)
	if err != nil {
		return nil, 0, err
	}
	count, err := itemCount(ctx, db, table.Name)
	if err != nil {
		return nil, 0, err
	}
	opts.ConsistentRead, opts.Epoch = true, pipeline.NewEpoch(epoch)
	return NewPages(db, table, opts), count, nil
}

// itemCount is a table's item count, as DynamoDB reports it.
func itemCount(ctx context.Context, db sampleAPI, table string) (int64, error) {
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	if err != nil {
		return 0, fmt.Errorf("describe %s: %w", table, err)
	}
	return aws.ToInt64(out.Table.ItemCount), nil
}
