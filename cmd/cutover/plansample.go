package main

import (
	"context"
	"time"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/plan"
	ddbsink "github.com/cutover/cutover/sinks/dynamodb"
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
	redissrc "github.com/cutover/cutover/sources/redis"
)

// itemsTable is the source table when events carry DynamoDB items.
func (p *planner) itemsTable() *ddbsrc.Table {
	if p.cfg.SourceItems() && p.src != nil {
		return p.src.dtable
	}
	return nil
}

// sample reads the sample (or every key) and estimates the whole.
func (p *planner) sample(ctx context.Context) (plan.Estimate, error) {
	var t plan.Tally
	var total int64
	var err error
	if p.cfg.SourceKind() == "dynamodb" {
		total, err = p.sampleTable(ctx, &t)
	} else {
		total, err = p.sampleRedis(ctx, &t)
	}
	if err != nil {
		return plan.Estimate{}, err
	}
	e := t.Estimate(total, p.whole)
	e.AddVersionBuckets(p.cfg.Sink.Redis.VersionBuckets)
	return e, nil
}

// classifier says what the pipeline would do with each sampled key, with
// the target's mapping when the target answered.
func (p *planner) classifier() *plan.Classifier {
	c := &plan.Classifier{MaxRecordBytes: p.cfg.Kafka.MaxRecordBytes, DynamoDBTarget: p.cfg.SinkKind() == "dynamodb",
		MaxItemBytes: ddbsink.MaxItemBytes, RedisMemory: p.redisTarget}
	if p.router != nil {
		c.Items = p.router
	}
	if p.renderer != nil {
		c.Renderer = p.renderer
	}
	return c
}

// sampleRedis samples every node of the Redis source. total is DBSIZE,
// or, when filters leave keys out, the sample scaled by its fraction.
func (p *planner) sampleRedis(ctx context.Context, t *plan.Tally) (int64, error) {
	r := p.cfg.Source.Redis
	ropts, err := p.readerOptions()
	if err != nil {
		return 0, err
	}
	c := p.classifier()
	// Paced like the snapshot (source.redis.keys_per_second), by the
	// keys read.
	res, err := p.src.topology().Sample(ctx, redissrc.SampleOptions{Keys: p.flags.sample, All: p.flags.full,
		Filter: filterOf(r), Reader: ropts, ScanCount: r.ScanCount, KeysPerSecond: r.KeysPerSecond},
		func(page *redissrc.Sample) {
			c.Batch(t, &page.Batch, page.Memory, time.Now())
			// Big keys travel in pieces of at most chunk bytes.
			chunk := int64(r.ChunkBytes)
			for _, big := range page.Counts.Big {
				t.Add(c.Pieces(big.Key, big.Type.String(), big.Size, page.Memory[big.Key], chunk))
			}
		})
	p.whole = res.Whole
	return res.Keys, err
}

// readerOptions read the Redis source as the snapshot does.
func (p *planner) readerOptions() (redissrc.ReaderOptions, error) {
	cfg := p.cfg
	r := cfg.Source.Redis
	types, err := parseTypes(r.Types)
	if err != nil {
		return redissrc.ReaderOptions{}, err
	}
	return redissrc.ReaderOptions{Name: cfg.Name, Types: types, MaxElements: r.MaxElements, MaxValueBytes: r.MaxValueBytes,
		ChunkElements: r.ChunkElements, ChunkBytes: r.ChunkBytes, MaxRecordBytes: cfg.Kafka.MaxRecordBytes, Logger: p.log}, nil
}

// sampleTable samples the DynamoDB source with random Scan segments.
// total is the table's item count (DynamoDB updates it about every six
// hours).
func (p *planner) sampleTable(ctx context.Context, t *plan.Tally) (int64, error) {
	d, w := p.cfg.Source.DynamoDB, p.src
	c := p.classifier()
	// Paced like the backfill's scan (source.dynamodb.read_capacity_per_second).
	res, err := ddbsrc.Sample(ctx, w.ddb, *w.dtable, ddbsrc.SampleOptions{Items: p.flags.sample, All: p.flags.full,
		Scan:                  ddbsrc.ScanOptions{Name: p.cfg.Name, Segments: d.Segments, PageSize: d.PageSize, ConsistentRead: d.ConsistentRead, Endpoint: d.Endpoint},
		ReadCapacityPerSecond: d.ReadCapacityPerSecond},
		func(b *pipeline.Batch) int64 { return c.Batch(t, b, nil, time.Now()) })
	p.whole = res.Whole
	return res.Items, err
}
