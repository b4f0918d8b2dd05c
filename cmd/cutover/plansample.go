package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"golang.org/x/time/rate"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/plan"
	ddbsink "github.com/cutover/cutover/sinks/dynamodb"
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
	redissrc "github.com/cutover/cutover/sources/redis"
)

// itemsTable is the source table when events carry DynamoDB items.
func (p *planner) itemsTable() *ddbsrc.Table {
	if p.cfg.sourceItems() && p.src != nil {
		return p.src.dtable
	}
	return nil
}

// sample reads the sample (or every key) and estimates the whole.
func (p *planner) sample(ctx context.Context) (plan.Estimate, error) {
	var t plan.Tally
	var total int64
	var err error
	if p.cfg.sourceKind() == "dynamodb" {
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
	c := &plan.Classifier{MaxRecordBytes: p.cfg.Kafka.MaxRecordBytes, DynamoDBTarget: p.cfg.sinkKind() == "dynamodb",
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
		func(page *redissrc.Sample) { p.addRedisPage(t, c, page) })
	p.whole = res.Whole
	return res.Keys, err
}

// addRedisPage counts a page of sampled keys: events, the reader's
// rejects, and big keys that travel in pieces.
func (p *planner) addRedisPage(t *plan.Tally, c *plan.Classifier, page *redissrc.Sample) {
	now := time.Now()
	for i := range page.Batch.Events {
		e := &page.Batch.Events[i]
		t.Add(c.RedisEvent(e, page.Memory[string(e.Key)], now))
	}
	for _, rej := range page.Batch.Rejects {
		t.Add(plan.Rejected(rej.Key, rej.Class, rej.Err, page.Memory[string(rej.Key)]))
	}
	chunk := int64(p.cfg.Source.Redis.ChunkBytes)
	for _, big := range page.Counts.Big {
		t.Add(c.Pieces(big.Key, big.Type.String(), big.Size, page.Memory[big.Key], chunk))
	}
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
// hours), or what was read when that is more.
func (p *planner) sampleTable(ctx context.Context, t *plan.Tally) (int64, error) {
	cfg, w := p.cfg, p.src
	d := cfg.Source.DynamoDB
	out, err := w.ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &w.dtable.Name})
	if err != nil {
		return 0, fmt.Errorf("describe %s: %w", w.dtable.Name, err)
	}
	count := aws.ToInt64(out.Table.ItemCount)
	pages := ddbsrc.NewPages(w.ddb, *w.dtable, ddbsrc.ScanOptions{Name: cfg.Name, Segments: d.Segments, PageSize: d.PageSize,
		ConsistentRead: d.ConsistentRead, Endpoint: d.Endpoint, Epoch: pipeline.NewEpoch(0)})
	p.whole = p.flags.full || count <= p.flags.sample
	if !p.whole {
		pages.SetSample(float64(p.flags.sample) / float64(count))
	}
	// Paced like the backfill's scan (source.dynamodb.read_capacity_per_second),
	// by the read units the pages take: 4 KB each, half for an
	// eventually consistent read.
	pace := newPace(d.ReadCapacityPerSecond, 1)
	c := p.classifier()
	unit := 8192.0
	if d.ConsistentRead {
		unit = 4096
	}
	for done := false; !done; {
		var b pipeline.Batch
		if b, done, err = pages.Next(ctx); err != nil {
			return 0, err
		}
		now := time.Now()
		var bytes float64
		for i := range b.Events {
			k := c.Event(&b.Events[i], now)
			t.Add(k)
			bytes += float64(k.Bytes)
		}
		// The encoded events are larger than the items (base64, JSON):
		// the pace errs on the slow side.
		if err := pace.wait(ctx, math.Ceil(bytes/unit)); err != nil {
			return 0, err
		}
		for _, rej := range b.Rejects {
			t.Add(plan.Rejected(rej.Key, rej.Class, rej.Err, 0))
		}
	}
	return count, nil
}

// pace limits the sample's reads to a rate a second; a zero rate does not
// limit.
type pace struct{ l *rate.Limiter }

func newPace(perSecond float64, minBurst int) pace {
	if perSecond <= 0 {
		return pace{}
	}
	return pace{rate.NewLimiter(rate.Limit(perSecond), max(minBurst, int(math.Ceil(perSecond))))}
}

// wait blocks until n more reads are within the rate.
func (p pace) wait(ctx context.Context, n float64) error {
	if p.l == nil || n <= 0 {
		return nil
	}
	return p.l.WaitN(ctx, min(int(n), p.l.Burst()))
}
