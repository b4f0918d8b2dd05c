package main

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"golang.org/x/time/rate"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/plan"
	ddbsink "github.com/cutover/cutover/sinks/dynamodb"
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
	redissrc "github.com/cutover/cutover/sources/redis"
)

// Why a sampled key cannot be carried (plan.Key.Reason); each is
// dead-lettered by the run.
const (
	reasonItemTooLarge = "dynamodb-item-over-400kb"
	reasonPieces       = "read-in-pieces"
	reasonUnmappable   = "unmappable"
	reasonOversize     = "over-max-record-bytes"
)

// versionKeyBytes is about what the Redis sink's version of a key takes
// besides the key's own bytes: a field of its slot's version bucket, a
// packed hash (sinks/redis/versions.go), holding the key's name and about
// 11 bytes of version, with 4 more for a deadline when the key expires,
// (measured: 18 bytes and the key, at 1,000,000 keys); the buckets
// themselves are counted once (versionBucketBytes).
const versionKeyBytes = 18

// versionBucketBytes is what a version bucket itself takes (MEMORY USAGE
// of a hash with one field, less the field).
const versionBucketBytes = 72

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
	if e.RedisMemory > 0 {
		// The version buckets' own cost: one hash per slot (or
		// version_buckets per slot) that holds a key.
		buckets := int64(pipeline.SlotCount) * int64(max(p.cfg.Sink.Redis.VersionBuckets, 1))
		e.RedisMemory += versionBucketBytes * min(e.Carried, buckets)
	}
	return e, nil
}

// sampleRedis samples every node of the Redis source. total is DBSIZE,
// or, when filters leave keys out, the sample scaled by its fraction.
func (p *planner) sampleRedis(ctx context.Context, t *plan.Tally) (int64, error) {
	cfg, w := p.cfg, p.src
	r := cfg.Source.Redis
	ropts, err := p.readerOptions()
	if err != nil {
		return 0, err
	}
	shards, err := w.sourceShards(ctx)
	if err != nil {
		return 0, err
	}
	var nodes []*redisNode
	defer func() {
		for _, n := range nodes {
			n.close()
		}
	}()
	var size int64
	for _, sh := range shards {
		node, err := w.openNode(ctx, sh)
		if err != nil {
			return 0, err
		}
		nodes = append(nodes, node)
		n, err := node.cl.DBSize(ctx).Result()
		if err != nil {
			return 0, redisconn.Explain(node.conn, err)
		}
		size += n
	}
	fraction := 1.0
	if !p.flags.full && size > p.flags.sample {
		fraction = float64(p.flags.sample) / float64(size)
	}
	p.whole = fraction == 1
	// Paced like the snapshot (source.redis.keys_per_second), by the
	// keys read.
	pace := newPace(float64(r.KeysPerSecond), r.ScanCount)
	var sampled int64
	for _, node := range nodes {
		s := redissrc.NewSampler(node.cl, node.conn, filterOf(r), r.ScanCount, fraction, ropts)
		if err := s.Prepare(ctx); err != nil {
			return 0, err
		}
		for done := false; !done; {
			var page redissrc.Sample
			if page, done, err = s.Next(ctx); err != nil {
				return 0, err
			}
			n := p.addRedisPage(t, &page)
			sampled += n
			if err := pace.wait(ctx, float64(n)); err != nil {
				return 0, err
			}
		}
	}
	if len(r.Include) > 0 || len(r.Exclude) > 0 || len(r.Types) > 0 {
		// DBSIZE counts the keys the filters leave out too.
		return int64(float64(sampled) / fraction), nil
	}
	return size, nil
}

// addRedisPage counts a page of sampled keys: events, the reader's
// rejects, and big keys that travel in pieces. It returns how many.
func (p *planner) addRedisPage(t *plan.Tally, page *redissrc.Sample) int64 {
	now := time.Now()
	var n int64
	for i := range page.Batch.Events {
		e := &page.Batch.Events[i]
		k := p.keyOf(e, now)
		if p.redisTarget && k.Reason == "" {
			k.MemoryBytes = page.Memory[string(e.Key)] + versionKeyBytes + int64(len(e.Key))
		}
		t.Add(k)
		n++
	}
	for _, rej := range page.Batch.Rejects {
		t.Add(plan.Key{Name: string(rej.Key), Type: "not read", Bytes: page.Memory[string(rej.Key)], Events: 1,
			Reason: rej.Class, Detail: rej.Err.Error()})
		n++
	}
	chunk := int64(p.cfg.Source.Redis.ChunkBytes)
	for _, big := range page.Counts.Big {
		mem := page.Memory[big.Key]
		k := plan.Key{Name: big.Key, Type: big.Type.String(), Bytes: mem, Events: max(1, (mem+chunk-1)/chunk), Chunked: true}
		switch {
		case p.cfg.sinkKind() == "dynamodb":
			k.Reason = reasonPieces
			k.Detail = fmt.Sprintf("a %s of %d elements (%s in memory) is read in pieces of at most %d bytes, and a DynamoDB item cannot be written in pieces (exclude the key, or copy it to a Redis target)",
				big.Type, big.Size, groupBytes(mem), chunk)
		case p.redisTarget:
			k.MemoryBytes = mem + versionKeyBytes + int64(len(big.Key))
		}
		t.Add(k)
		n++
	}
	return n
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
			k := p.keyOf(&b.Events[i], now)
			if p.renderer != nil && k.Reason == "" {
				p.renderItem(&k, &b.Events[i])
			}
			t.Add(k)
			bytes += float64(k.Bytes)
		}
		// The encoded events are larger than the items (base64, JSON):
		// the pace errs on the slow side.
		if err := pace.wait(ctx, math.Ceil(bytes/unit)); err != nil {
			return 0, err
		}
		for _, rej := range b.Rejects {
			t.Add(plan.Key{Name: string(rej.Key), Type: "not read", Events: 1, Reason: rej.Class, Detail: rej.Err.Error()})
		}
	}
	return count, nil
}

// keyOf is what the pipeline would do with one event: its size in Kafka
// and, for a DynamoDB target, the item the sink's mapping makes of it.
func (p *planner) keyOf(e *pipeline.Event, now time.Time) plan.Key {
	k := plan.Key{Name: string(e.Key), Type: e.Value.Type.String(), Events: 1, TTL: !e.ExpireAt.IsZero()}
	if k.TTL {
		k.ExpiresIn = e.ExpireAt.Sub(now)
	}
	enc, err := pipeline.Encode(nil, e)
	if err != nil {
		k.Reason, k.Detail = pipeline.RejectInvalid, err.Error()
		return k
	}
	k.Bytes = int64(len(enc) + len(e.Key))
	if max := p.cfg.Kafka.MaxRecordBytes; k.Bytes > int64(max) {
		k.Reason = reasonOversize
		k.Detail = fmt.Sprintf("its event of %d bytes is over kafka.max_record_bytes (%d)", k.Bytes, max)
		return k
	}
	if p.router == nil {
		return k
	}
	// Every error of the mapping wraps pipeline.ErrUnmappable: the sink
	// rejects (dead-letters) the event.
	item, err := p.router.Item(e, now)
	if err != nil {
		k.Reason, k.Detail = reasonUnmappable, err.Error()
	} else {
		k.ItemBytes = ddbsink.ItemSize(item)
		if k.ItemBytes > ddbsink.MaxItemBytes {
			k.Reason = reasonItemTooLarge
			k.Detail = fmt.Sprintf("its item is %d bytes after mapping, over DynamoDB's %d (exclude the key, or copy it to a Redis target)",
				k.ItemBytes, ddbsink.MaxItemBytes)
			k.ItemBytes = 0
		}
	}
	return k
}

// renderItem sizes the Redis key and value an item becomes in a Redis
// target, or says why the sink cannot map it.
func (p *planner) renderItem(k *plan.Key, e *pipeline.Event) {
	key, v, err := p.renderer.Render(e)
	if err != nil {
		k.Reason, k.Detail = reasonUnmappable, err.Error()
		return
	}
	k.MemoryBytes = redisKeyBytes(key, &v) + versionKeyBytes + int64(len(key))
}

// redisKeyBytes is about what a small key takes in Redis' memory: its
// dictionary entry, key and value object (about 48 bytes), the key, and
// the value in its compact encoding (a listpack for a small hash: each
// field and value with a few bytes of framing).
func redisKeyBytes(key string, v *pipeline.Value) int64 {
	n := int64(48 + len(key))
	switch v.Type {
	case pipeline.TypeHash:
		n += 8
		for _, f := range v.Hash {
			n += int64(len(f.Name) + len(f.Value) + 4)
		}
	default:
		n += int64(len(v.String)) + 8
	}
	return n
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
