package kafka

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

// DefaultMaxRecordBytes is the largest record batch produced by default,
// and so the largest event: under the 1 MiB (1,048,588 bytes) that a Kafka
// broker accepts unless its topic's max.message.bytes is raised.
const DefaultMaxRecordBytes = 1_000_000

// PublisherOptions configure a Publisher.
type PublisherOptions struct {
	// Topic receives the events.
	Topic string
	// DeadLetterTopic receives a record (key and error, no value) for each
	// event too large to publish or not valid. Required: such an event
	// must leave a trace.
	DeadLetterTopic string
	// MaxRecordBytes is the largest record batch produced, as Kafka
	// measures it against a topic's max.message.bytes: an event whose
	// record (key, value, headers and Kafka's own framing) is larger is
	// dead-lettered instead. Default DefaultMaxRecordBytes. Keep it at or
	// below the max.message.bytes of both topics.
	MaxRecordBytes int
	// MaxBufferedBytes bounds the memory of records waiting for Kafka's
	// acknowledgement; Publish blocks when it is reached. Default 16 MiB,
	// and at least twice MaxRecordBytes.
	MaxBufferedBytes int
	// Partitions is the number of partitions every key is spread over for
	// the publisher's whole life, and that Broadcast sends one copy to
	// each of; default (0) the topic's partition count when NewPublisher
	// runs (EnsureTopic reports it too). Partitions added to the topic
	// later get no events until a new Publisher starts: see Broadcast.
	Partitions int32
	// Logger receives one warning per dead-lettered event; default
	// slog.Default().
	Logger *slog.Logger
}

// PublisherStats are counters since the Publisher was made.
type PublisherStats struct {
	// Published events acknowledged by Kafka; PublishedByOp splits them
	// by operation (a truncate counts once per partition it is copied to).
	Published     int64
	PublishedByOp pipeline.OpCounts
	// Bytes of acknowledged event values.
	Bytes int64
	// DeadLettered records acknowledged in the dead-letter topic: events
	// too large or not valid, and the rejects of the sources' batches.
	DeadLettered int64
	// Invalid events failed pipeline.Event.Validate and were dead-lettered
	// (class "invalid") instead of published.
	Invalid int64
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
	// broken is closed when err is set: a Barrier waiting for its
	// acknowledgement stops waiting.
	broken chan struct{}

	published, bytes, deadLettered, invalid atomic.Int64
	publishedByOp                           opCounters
}

var _ pipeline.Publisher = (*Publisher)(nil)

// ticket tracks the records of one Publish call.
type ticket struct {
	remaining int // records not yet finished, +1 while Publish is still adding
	onDurable func()
}

// ProducerOpts are the franz-go options a Publisher's client needs.
// Records are keyed by the source key and partitioned by its murmur2 hash
// (pipeline.PartitionOf, the same as Kafka's default partitioner) over the
// publisher's partition count, so every event of a key lands on one
// partition, in publish order.
//
// A record batch is never larger than MaxRecordBytes: a broker refuses a
// batch over the topic's max.message.bytes as a whole, and a batch of
// values that do not compress (a run of random bytes, say) grows as large
// as this bound allows.
func ProducerOpts(o PublisherOptions) []kgo.Opt {
	o = o.withDefaults()
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(partitioner{events: o.Topic}),
		kgo.ProducerBatchMaxBytes(int32(o.MaxRecordBytes)),
		kgo.MaxBufferedBytes(o.MaxBufferedBytes),
		// Snappy rather than lz4: lz4's writer keeps a 4 MiB block buffer
		// per batch being compressed (16 MiB at a backfill's peak), for
		// about the same CPU and ratio on events. Every Kafka client reads
		// both.
		kgo.ProducerBatchCompression(kgo.SnappyCompression(), kgo.NoCompression()),
		kgo.ProducerLinger(2 * time.Millisecond),
	}
}

func (o PublisherOptions) withDefaults() PublisherOptions {
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	// Below this not even a dead letter's headers would fit.
	o.MaxRecordBytes = max(o.MaxRecordBytes, minRecordBytes)
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
	if opts.Partitions <= 0 {
		n, err := partitionCount(ctx, cl, opts.Topic)
		if err != nil {
			return nil, fmt.Errorf("publisher: %w", err)
		}
		opts.Partitions = n
	}
	return &Publisher{cl: cl, opts: opts, log: opts.Logger, broken: make(chan struct{})}, nil
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
// One event never stops the publisher: an event whose record would exceed
// MaxRecordBytes becomes a reject of class "oversize", and an event that
// is not valid (pipeline.Event.Validate) one of class "invalid"; each is
// logged with its key and reason, counted, and written to the dead-letter
// topic in place of the event. Only a failure of the pipeline itself
// (Kafka unreachable or refusing writes) fails Publish.
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
	if _, err := p.enqueue(t); err != nil {
		return err
	}

	promiseOf := func(op pipeline.Op) func(r *kgo.Record, err error) {
		return func(r *kgo.Record, err error) {
			if err == nil {
				if r.Topic == p.opts.Topic {
					p.published.Add(1)
					p.publishedByOp.add(op, 1)
					p.bytes.Add(int64(len(r.Value)))
				} else {
					p.deadLettered.Add(1)
				}
			} else {
				err = fmt.Errorf("produce key %q to %s: %w", r.Key, r.Topic, explainProduceErr(err, p.opts.MaxRecordBytes))
			}
			p.finish(t, err)
		}
	}
	promise := promiseOf(0)
	var byOp [pipeline.OpTruncate + 1]func(*kgo.Record, error)
	for _, op := range pipeline.Ops {
		byOp[op] = promiseOf(op)
	}
	now := time.Now()
	for i := range b.Events {
		pr := promise
		if op := b.Events[i].Op; int(op) < len(byOp) && byOp[op] != nil {
			pr = byOp[op]
		}
		p.cl.Produce(ctx, p.record(&b.Events[i], now), pr)
	}
	for _, r := range b.Rejects {
		p.cl.Produce(ctx, p.deadLetter(r.Key, r.Size, r.Class, r.Err, now), promise)
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
//
// The copies go to the publisher's Partitions, the count every key was
// sent by, even when the topic has grown since: a copy must follow the
// re-reads of the keys it covers on their partition, and those went to
// PartitionOf(key, Partitions). The sink's sweep of a copy then covers
// exactly the keys of its partition by that count; the partitions added
// later hold no events of this publisher, so they need no copy. A topic
// that grew is logged; restarting cutover spreads keys over every
// partition (the restarted source heals, and its truncate names the new
// count).
//
// A truncate that is not valid is the source's own mistake, not data, and
// Broadcast returns it as an error rather than dead-letter it.
func (p *Publisher) Broadcast(ctx context.Context, e pipeline.Event, onDurable func()) error {
	if e.Op != pipeline.OpTruncate || e.Scope == nil {
		return fmt.Errorf("broadcast: only truncate events with a scope are sent to every partition")
	}
	copies := make([]pipeline.Event, p.opts.Partitions)
	for i := range copies {
		scope := *e.Scope
		scope.Partition, scope.Partitions = int32(i), p.opts.Partitions
		copies[i] = e
		copies[i].Scope = &scope
	}
	if err := copies[0].Validate(); err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	if err := p.checkPartitions(ctx); err != nil {
		return err
	}
	return p.Publish(ctx, pipeline.Batch{Events: copies}, onDurable)
}

// checkPartitions compares the topic's partition count with the
// publisher's: more is logged (see Broadcast), fewer is an error, since
// the topic was deleted and made again and the partitions this publisher
// sends to are gone. A failed look is logged and ignored: the copies go
// where every key went either way.
func (p *Publisher) checkPartitions(ctx context.Context) error {
	n, err := partitionCount(ctx, p.cl, p.opts.Topic)
	switch {
	case err != nil:
		p.log.Warn("broadcast: could not read the topic's partition count", "topic", p.opts.Topic, "err", err)
	case n < p.opts.Partitions:
		return fmt.Errorf("broadcast: %w: topic %s has %d partitions, %d when cutover started (was it deleted and created again?): restart cutover",
			ErrPartitionsChanged, p.opts.Topic, n, p.opts.Partitions)
	case n > p.opts.Partitions:
		p.log.Warn("the topic has more partitions than when cutover started; every key still goes to the first ones, in order, until cutover restarts",
			"topic", p.opts.Topic, "partitions", n, "used", p.opts.Partitions)
	}
	return nil
}

// partitioner sends each record of the event topic to the partition the
// Publisher set on it: pipeline.PartitionOf its key over the publisher's
// partition count, or a truncate's own partition. The count is the
// publisher's, not the topic's current one: franz-go learns of added
// partitions on a metadata refresh, in the middle of a run, and hashing
// over the new count would move keys to other partitions mid-stream — the
// pieces of one big key could then be applied out of order (a later piece
// before the first is skipped, leaving the key incomplete), and a
// truncate would no longer follow the re-reads of the keys it covers.
// Records of other topics (the dead-letter topic) are hashed by key over
// that topic's partitions, or go to the partition set on them when they
// have no key.
type partitioner struct{ events string }

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return topicPartitioner{pinned: topic == p.events}
}

type topicPartitioner struct{ pinned bool }

func (topicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (t topicPartitioner) Partition(r *kgo.Record, n int) int {
	if t.pinned || r.Key == nil {
		return int(r.Partition)
	}
	return int(pipeline.PartitionOf(r.Key, int32(n)))
}

// record encodes an event, or makes its dead-letter record when it is not
// valid or too large to publish.
// eventHeaders are the headers of every event record, shared: Kafka
// clients only read them.
var eventHeaders = []kgo.RecordHeader{header(HeaderContentType, pipeline.ContentType)}

// encodeBuffers are scratch buffers to encode events in.
var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (p *Publisher) record(e *pipeline.Event, now time.Time) *kgo.Record {
	// Encoded in a scratch buffer, then copied to one of its exact size:
	// a buffer grown by appends has up to twice the room it uses, and the
	// records waiting for Kafka are bounded by the bytes they use
	// (MaxBufferedBytes), not the room they hold.
	scratch := encodeBuffers.Get().(*[]byte)
	buf, err := pipeline.Encode((*scratch)[:0], e)
	value := bytes.Clone(buf)
	if cap(buf) <= 1<<20 { // a big key's piece's buffer is not kept
		*scratch = buf
		encodeBuffers.Put(scratch)
	}
	if err != nil {
		p.invalid.Add(1)
		return p.deadLetter(e.Key, 0, ClassInvalid, err, now)
	}
	r := &kgo.Record{
		Topic:   p.opts.Topic,
		Key:     e.Key,
		Value:   value,
		Headers: eventHeaders,
	}
	if e.Op == pipeline.OpTruncate {
		r.Key, r.Partition = nil, e.Scope.Partition
	} else {
		// The empty key is a key: a nil record key is what marks a
		// truncate, so the empty key travels as a non-nil empty slice
		// (Kafka stores it as a zero-length key, not a null one).
		if r.Key == nil {
			r.Key = []byte{}
		}
		r.Partition = pipeline.PartitionOf(r.Key, p.opts.Partitions)
	}
	if size := recordBytes(r); size > p.opts.MaxRecordBytes {
		oversize := fmt.Errorf("event of %d bytes exceeds the %d-byte record limit (raise kafka.max_record_bytes and the topic's max.message.bytes, or exclude the key)",
			size, p.opts.MaxRecordBytes)
		return p.deadLetter(e.Key, int64(size), pipeline.RejectOversize, oversize, now)
	}
	return r
}

// deadLetter logs a key the source read but cannot publish, and makes its
// dead-letter record, small enough to be accepted.
func (p *Publisher) deadLetter(key []byte, size int64, class string, err error, now time.Time) *kgo.Record {
	p.log.Warn("key cannot be published, sent to the dead-letter topic",
		"key", logKey(key), "class", class, "err", logText(err), "dead_letter_topic", p.opts.DeadLetterTopic)
	r, _ := fitDeadLetter(sourceDeadLetter(p.opts.DeadLetterTopic, key, size, class, err, now), p.opts.MaxRecordBytes)
	return r
}

func explainProduceErr(err error, limit int) error {
	if isTooLarge(err) {
		return fmt.Errorf("%w (the topic's max.message.bytes is below kafka.max_record_bytes=%d: lower one or raise the other)", err, limit)
	}
	return err
}

// enqueue puts t at the end of the queue, unless the publisher failed
// already; broken is closed once it fails.
func (p *Publisher) enqueue(t *ticket) (broken <-chan struct{}, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	p.queue = append(p.queue, t)
	return p.broken, nil
}

// finish records that one record of t is done (or that Publish stopped
// adding to it) and runs the onDurable callbacks of the tickets that have
// become a completed prefix.
func (p *Publisher) finish(t *ticket, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil && p.err == nil {
		p.err = err
		close(p.broken)
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

// Err is the failure that stopped the publisher, nil while it works.
func (p *Publisher) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stats returns the counters so far.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{Published: p.published.Load(), PublishedByOp: p.publishedByOp.load(), Bytes: p.bytes.Load(), DeadLettered: p.deadLettered.Load(),
		Invalid: p.invalid.Load()}
}
