package dynamodb

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/internal/retry"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/dynamoattr"
)

// Pages reads a table as pages of events, for reconcile: each Next reads
// one Scan page of up to opts.Segments segments in parallel. It
// implements pipeline/reconcile's Source, Reader and Checker; it
// publishes nothing and keeps no checkpoint.
//
// A sample (SetSample) splits the table into 1,000 segments and reads a
// random subset of them: whole pages, so a sample costs read capacity in
// proportion to its size.
type Pages struct {
	db    pagesAPI
	table Table
	opts  ScanOptions
	total int                                        // TotalSegments of the Scan
	todo  []int                                      // segments not finished, in reading order
	last  map[int]map[string]ddbtypes.AttributeValue // where each started segment stopped
}

// pagesAPI is what reconcile's reads call of DynamoDB; *dynamodb.Client
// implements it.
type pagesAPI interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// sampleSegments is how finely a sample splits the table.
const sampleSegments = 1000

// NewPages prepares a read of table. opts.Segments, PageSize,
// ConsistentRead, Endpoint and Epoch apply.
func NewPages(db pagesAPI, table Table, opts ScanOptions) *Pages {
	if opts.Segments <= 0 {
		opts.Segments = 4
	}
	p := &Pages{db: db, table: table, opts: opts, total: opts.Segments, last: map[int]map[string]ddbtypes.AttributeValue{}}
	for seg := range p.total {
		p.todo = append(p.todo, seg)
	}
	return p
}

// SetSample makes the read cover about fraction of the table (0 < f <
// 1): a random choice of segments.
func (p *Pages) SetSample(fraction float64) {
	if fraction <= 0 || fraction >= 1 {
		return
	}
	p.total = sampleSegments
	n := max(1, int(math.Ceil(fraction*sampleSegments)))
	p.todo = rand.Perm(sampleSegments)[:n] //nolint:gosec // a sample, not a secret
}

// Next returns the next page of items as upsert events; done is true once
// every segment is read.
func (p *Pages) Next(ctx context.Context) (pipeline.Batch, bool, error) {
	active := p.todo[:min(len(p.todo), p.opts.Segments)]
	pages := make([]pipeline.Batch, len(active))
	// Each reader writes only its own slot; p.last is updated after Wait.
	next := make([]map[string]ddbtypes.AttributeValue, len(active))
	g, gctx := errgroup.WithContext(ctx)
	for i, seg := range active {
		last := p.last[seg]
		g.Go(func() error {
			in := &dynamodb.ScanInput{
				TableName: aws.String(p.table.Name), Segment: aws.Int32(int32(seg)), TotalSegments: aws.Int32(int32(p.total)),
				ConsistentRead: aws.Bool(p.opts.ConsistentRead), ExclusiveStartKey: last,
			}
			if p.opts.PageSize > 0 {
				in.Limit = aws.Int32(p.opts.PageSize)
			}
			out, err := p.db.Scan(gctx, in)
			if err != nil {
				return fmt.Errorf("scan %s segment %d: %w", p.table.Name, seg, explain(p.opts.Endpoint, err))
			}
			for _, raw := range out.Items {
				if err := p.add(&pages[i], raw); err != nil {
					return fmt.Errorf("segment %d: %w", seg, err)
				}
			}
			next[i] = out.LastEvaluatedKey
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return pipeline.Batch{}, false, err
	}
	var b pipeline.Batch
	var todo []int
	for i, seg := range active {
		b.Events = append(b.Events, pages[i].Events...)
		b.Rejects = append(b.Rejects, pages[i].Rejects...)
		if len(next[i]) == 0 {
			delete(p.last, seg)
		} else {
			p.last[seg] = next[i]
			todo = append(todo, seg)
		}
	}
	p.todo = append(todo, p.todo[len(active):]...)
	return b, len(p.todo) == 0, nil
}

// add appends to b the event of an item read now, at the version of a
// scanned row: older than every stream record of the pipeline's epoch.
func (p *Pages) add(b *pipeline.Batch, raw map[string]ddbtypes.AttributeValue) error {
	version, err := pipeline.SequenceVersion(p.opts.Epoch.Load(), "1")
	if err != nil {
		return err
	}
	src := pipeline.SourceInfo{Connector: "dynamodb", Name: p.opts.Name, Table: p.table.Name, Time: time.Now()}
	return p.table.add(b, dynamoattr.FromItem(raw), version, pipeline.OriginRepair, src)
}

// Read implements reconcile.Reader: the items of keys (item keys, see
// pipeline.EncodeItemKey, or Redis keys through the table's Decoder),
// read with strongly consistent BatchGetItem calls. A key the table does
// not hold gets no event.
func (p *Pages) Read(ctx context.Context, keys [][]byte) (pipeline.Batch, error) {
	var b pipeline.Batch
	err := p.batchGet(ctx, keys, nil, nil, func(item map[string]ddbtypes.AttributeValue) error {
		return p.add(&b, item)
	})
	return b, err
}

// Exists reports which item keys (pipeline.EncodeItemKey) the table holds,
// with strongly consistent BatchGetItem calls of up to 100 keys. A key
// that is not an item key of this table does not exist.
func (p *Pages) Exists(ctx context.Context, keys [][]byte) (map[string]bool, error) {
	out := make(map[string]bool, len(keys))
	for _, k := range keys {
		out[string(k)] = false
	}
	if p.table.Decoder != nil {
		// A tombstone is an item, but the key it holds is deleted.
		b, err := p.Read(ctx, keys)
		for _, e := range b.Events {
			out[string(e.Key)] = e.Op == pipeline.OpUpsert
		}
		// An item that cannot be read back is there all the same.
		for _, r := range b.Rejects {
			if _, asked := out[string(r.Key)]; asked {
				out[string(r.Key)] = true
			}
		}
		return out, err
	}
	names := map[string]string{"#p": p.table.Partition}
	proj := "#p"
	if p.table.Sort != "" {
		names["#s"] = p.table.Sort
		proj += ", #s"
	}
	err := p.batchGet(ctx, keys, &proj, names, func(item map[string]ddbtypes.AttributeValue) error {
		key, err := p.table.Key(dynamoattr.FromItem(item))
		if err == nil {
			out[string(pipeline.EncodeItemKey(key))] = true
		}
		return err
	})
	return out, err
}

// batchGet reads keys in strongly consistent BatchGetItem calls of up to
// 100 keys, retrying unprocessed keys, and calls fn with each item found.
// Keys that are not item keys of this table are skipped, and a key asked
// for twice is read once (DynamoDB refuses a request that names a key
// twice).
func (p *Pages) batchGet(ctx context.Context, keys [][]byte, proj *string, names map[string]string,
	fn func(map[string]ddbtypes.AttributeValue) error) error {
	seen := make(map[string]bool, len(keys))
	unique := keys[:0:0]
	for _, k := range keys {
		if !seen[string(k)] {
			seen[string(k)] = true
			unique = append(unique, k)
		}
	}
	keys = unique
	for start := 0; start < len(keys); start += 100 {
		var req []map[string]ddbtypes.AttributeValue
		for _, k := range keys[start:min(start+100, len(keys))] {
			if attrs, ok := p.table.keyAttrs(k); ok {
				req = append(req, attrs)
			}
		}
		bo := retry.New(2*time.Minute, retry.Initial(50*time.Millisecond), retry.Max(time.Minute))
		for len(req) > 0 {
			resp, err := p.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]ddbtypes.KeysAndAttributes{
				p.table.Name: {Keys: req, ConsistentRead: aws.Bool(true), ProjectionExpression: proj, ExpressionAttributeNames: names},
			}})
			if err != nil {
				return fmt.Errorf("read items from %s: %w", p.table.Name, explain(p.opts.Endpoint, err))
			}
			for _, item := range resp.Responses[p.table.Name] {
				if err := fn(item); err != nil {
					return err
				}
			}
			req = resp.UnprocessedKeys[p.table.Name].Keys
			if len(req) > 0 {
				wait := bo.NextBackOff()
				if wait == retry.Stop {
					return fmt.Errorf("read items from %s: %d keys still unprocessed after retrying for 2m", p.table.Name, len(req))
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
		}
	}
	return nil
}
