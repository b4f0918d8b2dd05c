package dynamodb

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/cenkalti/backoff/v4"
	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/dynamoattr"
)

// Pages reads a whole table as pages of events, for reconcile: each Next
// reads one Scan page of every unfinished segment, in parallel. It
// implements pipeline/reconcile's Source and Checker; it publishes
// nothing and keeps no checkpoint.
type Pages struct {
	db    *dynamodb.Client
	table Table
	opts  ScanOptions
	last  []map[string]ddbtypes.AttributeValue
	done  []bool
}

// NewPages prepares a read of table. opts.Segments, PageSize,
// ConsistentRead and Endpoint apply.
func NewPages(db *dynamodb.Client, table Table, opts ScanOptions) *Pages {
	if opts.Segments <= 0 {
		opts.Segments = 4
	}
	return &Pages{db: db, table: table, opts: opts, last: make([]map[string]ddbtypes.AttributeValue, opts.Segments),
		done: make([]bool, opts.Segments)}
}

// Next returns the next page of items as upsert events; done is true once
// every segment is read.
func (p *Pages) Next(ctx context.Context) (pipeline.Batch, bool, error) {
	pages := make([][]pipeline.Event, len(p.done))
	g, gctx := errgroup.WithContext(ctx)
	for seg := range p.done {
		if p.done[seg] {
			continue
		}
		g.Go(func() error {
			in := &dynamodb.ScanInput{
				TableName: aws.String(p.table.Name), Segment: aws.Int32(int32(seg)), TotalSegments: aws.Int32(int32(len(p.done))),
				ConsistentRead: aws.Bool(p.opts.ConsistentRead), ExclusiveStartKey: p.last[seg],
			}
			if p.opts.PageSize > 0 {
				in.Limit = aws.Int32(p.opts.PageSize)
			}
			out, err := p.db.Scan(gctx, in)
			if err != nil {
				return fmt.Errorf("scan %s segment %d: %w", p.table.Name, seg, explain(p.opts.Endpoint, err))
			}
			src := pipeline.SourceInfo{Connector: "dynamodb", Name: p.opts.Name, Table: p.table.Name, Time: time.Now()}
			for _, raw := range out.Items {
				e, err := p.table.event(dynamoattr.FromItem(raw), nil, pipeline.OriginRepair, src)
				if err != nil {
					return fmt.Errorf("segment %d: %w", seg, err)
				}
				pages[seg] = append(pages[seg], e)
			}
			p.last[seg] = out.LastEvaluatedKey
			p.done[seg] = len(out.LastEvaluatedKey) == 0
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return pipeline.Batch{}, false, err
	}
	var b pipeline.Batch
	for _, page := range pages {
		b.Events = append(b.Events, page...)
	}
	finished := true
	for _, d := range p.done {
		finished = finished && d
	}
	return b, finished, nil
}

// Exists reports which item keys (pipeline.EncodeItemKey) the table holds,
// with strongly consistent BatchGetItem calls of up to 100 keys. A key
// that is not an item key of this table does not exist.
func (p *Pages) Exists(ctx context.Context, keys [][]byte) (map[string]bool, error) {
	out := make(map[string]bool, len(keys))
	names := map[string]string{"#p": p.table.Partition}
	proj := "#p"
	if p.table.Sort != "" {
		names["#s"] = p.table.Sort
		proj += ", #s"
	}
	for start := 0; start < len(keys); start += 100 {
		var req []map[string]ddbtypes.AttributeValue
		for _, k := range keys[start:min(start+100, len(keys))] {
			out[string(k)] = false
			attrs, err := pipeline.DecodeItemKey(k)
			if err != nil || attrs[0].Name != p.table.Partition || (len(attrs) == 2) != (p.table.Sort != "") {
				continue
			}
			req = append(req, dynamoattr.Key(attrs))
		}
		bo := backoff.WithContext(backoff.NewExponentialBackOff(backoff.WithInitialInterval(50*time.Millisecond), backoff.WithMaxElapsedTime(2*time.Minute)), ctx)
		for len(req) > 0 {
			resp, err := p.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]ddbtypes.KeysAndAttributes{
				p.table.Name: {Keys: req, ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String(proj), ExpressionAttributeNames: names},
			}})
			if err != nil {
				return nil, fmt.Errorf("read items from %s: %w", p.table.Name, explain(p.opts.Endpoint, err))
			}
			for _, item := range resp.Responses[p.table.Name] {
				key, err := p.table.Key(dynamoattr.FromItem(item))
				if err != nil {
					return nil, err
				}
				out[string(pipeline.EncodeItemKey(key))] = true
			}
			req = resp.UnprocessedKeys[p.table.Name].Keys
			if len(req) > 0 {
				wait := bo.NextBackOff()
				if wait == backoff.Stop {
					return nil, fmt.Errorf("read items from %s: %d keys still unprocessed after retrying for 2m", p.table.Name, len(req))
				}
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(wait):
				}
			}
		}
	}
	return out, nil
}
