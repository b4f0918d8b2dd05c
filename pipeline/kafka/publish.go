package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

// DefaultMaxRecordBytes is the largest encoded event published by default:
// under the 1 MiB that a Kafka broker accepts unless its topic's
// max.message.bytes is raised.
const DefaultMaxRecordBytes = 1_000_000

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	// Topic receives the events.
	Topic string
	// DeadLetterTopic receives a record (key and error, no value) for each
	// event too large to publish. Required: an oversize event must leave a
	// trace.
	DeadLetterTopic string
	// MaxRecordBytes is the largest key+value published; default
	// DefaultMaxRecordBytes. Raise it together with the topic's
	// max.message.bytes.
	MaxRecordBytes int
	// MaxBufferedBytes bounds the memory of records waiting for Kafka's
	// acknowledgement; Publish blocks when it is reached. Default 64 MiB.
	MaxBufferedBytes int
	// Partitions is the topic's partition count, which Broadcast sends one
	// copy to each of. EnsureTopic reports it.
	Partitions int32
	// Logger receives one warning per dead-lettered event; default
	// slog.Default().
	Logger *slog.Logger
}

// PublisherStats are counters since the Publisher was made.
type PublisherStats struct {
	// Published events acknowledged by Kafka.
	Published int64
	// Bytes of acknowledged event values.
	Bytes int64
	// DeadLettered events that were too large and went to the dead-letter
	// topic instead.
	DeadLettered int64
}

// Publisher produces events to a topic with an idempotent producer and
// acks=all, and tells the source when a prefix of what it published is
// durable.
type Publisher struct {
	cl   *kgo.Client
	opts PublisherOptions
	log  *slog.Logger

	mu    sync.Mutex
	queue []*ticket // unfinished Publish calls, in call order
	err   error     // first failure; nothing after it becomes durable

	published, bytes, deadLettered atomic.Int64
}

// ticket tracks the records of one Publish call.
type ticket struct {
	remaining int // records not yet finished, +1 while Publish is still adding
	onDurable func()
}

// ProducerOpts are the franz-go options a Publisher's client needs.
// Records are keyed by the source key and partitioned by its murmur2 hash
// (pipeline.PartitionOf, the same as Kafka's default partitioner), so every
// event of a key lands on one partition, in publish order.
func ProducerOpts(o PublisherOptions) []kgo.Opt {
	o = o.withDefaults()
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(partitioner{}),
		kgo.ProducerBatchMaxBytes(int32(o.MaxRecordBytes + 48*1024)),
		kgo.MaxBufferedBytes(o.MaxBufferedBytes),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
		kgo.ProducerLinger(2 * time.Millisecond),
	}
}

func (o PublisherOptions) withDefaults() PublisherOptions {
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if o.MaxBufferedBytes <= 0 {
		o.MaxBufferedBytes = 16 << 20
	}
	if o.MaxBufferedBytes < 2*o.MaxRecordBytes {
		o.MaxBufferedBytes = 2 * o.MaxRecordBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// NewPublisher publishes through cl, which must have been made with
// ProducerOpts(opts). It waits until the cluster can accept idempotent
// writes.
func NewPublisher(ctx context.Context, cl *kgo.Client, opts PublisherOptions) (*Publisher, error) {
	if opts.Topic == "" || opts.DeadLetterTopic == "" {
		return nil, fmt.Errorf("publisher needs a topic and a dead-letter topic")
	}
	if err := waitProducerReady(ctx, cl); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	return &Publisher{cl: cl, opts: opts, log: opts.Logger}, nil
}

// Publish produces a batch's events in order, and a dead-letter record for
// each of its rejects, and returns once they are buffered (it blocks while
// the buffer is full: that is the source's backpressure).
//
// onDurable, if not nil, is called once every record of this call and of
// every earlier call has been acknowledged by Kafka, in call order. It runs
// on a producer goroutine with the publisher's lock held: it must be quick
// and must not call the Publisher.
//
// An event whose encoded size exceeds MaxRecordBytes is not published; it
// becomes a reject of class "oversize".
//
// ctx must outlive the records, not just the call: the producer fails a
// record that is still buffered when its context ends (which is how a
// shutdown abandons unsent records).
//
// Publish returns an error once any record failed; from then on nothing
// more is reported durable, so the source's checkpoint stays before the
// failure and a restart repeats it.
func (p *Publisher) Publish(ctx context.Context, b pipeline.Batch, onDurable func()) error {
	n := len(b.Events) + len(b.Rejects)
	t := &ticket{remaining: n + 1, onDurable: onDurable}
	p.mu.Lock()
	if p.err != nil {
		err := p.err
		p.mu.Unlock()
		return err
	}
	p.queue = append(p.queue, t)
	p.mu.Unlock()

	promise := func(r *kgo.Record, err error) {
		if err == nil {
			if r.Topic == p.opts.Topic {
				p.published.Add(1)
				p.bytes.Add(int64(len(r.Value)))
			} else {
				p.deadLettered.Add(1)
			}
		} else {
			err = fmt.Errorf("produce key %q to %s: %w", r.Key, r.Topic, explainProduceErr(err, p.opts.MaxRecordBytes))
		}
		p.finish(t, err)
	}
	now := time.Now()
	for i := range b.Events {
		rec, err := p.record(&b.Events[i], now)
		if err != nil {
			// An invalid event is a bug in the source, not bad data:
			// stop rather than write something no sink can read.
			err = fmt.Errorf("publish key %q: %w", b.Events[i].Key, err)
			for range n - i + 1 { // this record, the rest, and Publish's own slot
				p.finish(t, err)
			}
			return err
		}
		p.cl.Produce(ctx, rec, promise)
	}
	for _, r := range b.Rejects {
		p.log.Warn("key cannot be published, sent to the dead-letter topic",
			"key", string(r.Key), "class", r.Class, "err", r.Err, "dead_letter_topic", p.opts.DeadLetterTopic)
		p.cl.Produce(ctx, sourceDeadLetter(p.opts.DeadLetterTopic, r.Key, r.Size, r.Class, r.Err, now), promise)
	}
	p.finish(t, nil) // Publish is done adding to t
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Broadcast publishes one copy of e — a truncate event — to every
// partition, each copy's scope naming its partition, after everything
// published before it on that partition. onDurable runs once every copy
// (and everything published earlier) is acknowledged.
func (p *Publisher) Broadcast(ctx context.Context, e pipeline.Event, onDurable func()) error {
	if e.Op != pipeline.OpTruncate || e.Scope == nil {
		return fmt.Errorf("broadcast: only truncate events with a scope are sent to every partition")
	}
	if p.opts.Partitions <= 0 {
		return fmt.Errorf("broadcast: the publisher does not know the topic's partition count")
	}
	copies := make([]pipeline.Event, p.opts.Partitions)
	for i := range copies {
		scope := *e.Scope
		scope.Partition, scope.Partitions = int32(i), p.opts.Partitions
		copies[i] = e
		copies[i].Scope = &scope
	}
	return p.Publish(ctx, pipeline.Batch{Events: copies}, onDurable)
}

// partitioner sends a keyed record to pipeline.PartitionOf its key, and a
// record without a key (a truncate event) to the partition set on it.
type partitioner struct{}

func (partitioner) ForTopic(string) kgo.TopicPartitioner { return partitioner{} }

func (partitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (partitioner) Partition(r *kgo.Record, n int) int {
	if r.Key == nil {
		return int(r.Partition)
	}
	return int(pipeline.PartitionOf(r.Key, int32(n)))
}

// record encodes an event, or makes its dead-letter record if it is too
// large to publish.
func (p *Publisher) record(e *pipeline.Event, now time.Time) (*kgo.Record, error) {
	value, err := pipeline.Encode(make([]byte, 0, 256), e)
	if err != nil {
		return nil, err
	}
	if size := len(e.Key) + len(value); size > p.opts.MaxRecordBytes {
		oversize := fmt.Errorf("event of %d bytes exceeds the %d-byte record limit (raise kafka.max_record_bytes and the topic's max.message.bytes, or exclude the key)",
			size, p.opts.MaxRecordBytes)
		p.log.Warn("key cannot be published, sent to the dead-letter topic",
			"key", string(e.Key), "class", pipeline.RejectOversize, "err", oversize, "dead_letter_topic", p.opts.DeadLetterTopic)
		return sourceDeadLetter(p.opts.DeadLetterTopic, e.Key, int64(size), pipeline.RejectOversize, oversize, now), nil
	}
	r := &kgo.Record{
		Topic:   p.opts.Topic,
		Key:     e.Key,
		Value:   value,
		Headers: []kgo.RecordHeader{header(HeaderContentType, pipeline.ContentType)},
	}
	if e.Op == pipeline.OpTruncate {
		r.Key, r.Partition = nil, e.Scope.Partition
	}
	return r, nil
}

func explainProduceErr(err error, limit int) error {
	if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
		return fmt.Errorf("%w (the topic's max.message.bytes is below kafka.max_record_bytes=%d: lower one or raise the other)", err, limit)
	}
	return err
}

// finish records that one record of t is done (or that Publish stopped
// adding to it) and runs the onDurable callbacks of the tickets that have
// become a completed prefix.
func (p *Publisher) finish(t *ticket, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil && p.err == nil {
		p.err = err
	}
	t.remaining--
	if p.err != nil {
		return
	}
	for len(p.queue) > 0 && p.queue[0].remaining == 0 {
		head := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		if head.onDurable != nil {
			head.onDurable()
		}
	}
}

// Flush waits until every published event is acknowledged or failed, and
// returns the first failure.
func (p *Publisher) Flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush producer: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stats returns the counters so far.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{Published: p.published.Load(), Bytes: p.bytes.Load(), DeadLettered: p.deadLettered.Load()}
}
