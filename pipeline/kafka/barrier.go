package kafka

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// HeaderBarrier marks a drain barrier on the event topic; its value is
// the drain's ID. A barrier is not an event: its record has no key, and
// its value is a small JSON object ({"drain":…,"partition":…,
// "partitions":…}) that no event decoder is meant to read. Every reader of
// the event topic skips it (IsBarrier); the sink group commits past it
// like any other record, which is what `cutover drain` waits for.
const HeaderBarrier = "cutover.barrier"

// Barrier is what a barrier record says.
type Barrier struct {
	// ID is the drain's ID, the same as the record's HeaderBarrier.
	ID string `json:"drain"`
	// Partition is the partition the barrier was sent to.
	Partition int32 `json:"partition"`
	// Partitions is how many partitions the publisher sends events to:
	// one barrier went to each of them, and partitions after them get no
	// events from it (see PublisherOptions.Partitions).
	Partitions int32 `json:"partitions"`
}

// IsBarrier reports whether r is a drain barrier, and the drain's ID.
// Readers of the event topic call it before decoding a record: a barrier
// is done as soon as it is read (nothing to apply), and its offset is
// committed with the records around it.
func IsBarrier(r *kgo.Record) (id string, ok bool) {
	for _, h := range r.Headers {
		if h.Key == HeaderBarrier {
			return string(h.Value), true
		}
	}
	return "", false
}

// ParseBarrier reads a barrier record; ok is false for any other record.
func ParseBarrier(r *kgo.Record) (b Barrier, ok bool) {
	id, ok := IsBarrier(r)
	if !ok {
		return b, false
	}
	// A value that does not parse still marks a barrier of this ID; only
	// the partition count is then unknown.
	_ = json.Unmarshal(r.Value, &b)
	b.ID, b.Partition = id, r.Partition
	return b, true
}

func barrierRecord(topic, id string, partition, partitions int32) *kgo.Record {
	value, _ := json.Marshal(Barrier{ID: id, Partition: partition, Partitions: partitions}) // cannot fail
	return &kgo.Record{
		Topic:     topic,
		Partition: partition,
		Value:     value,
		Headers:   []kgo.RecordHeader{{Key: HeaderBarrier, Value: []byte(id)}},
	}
}

// Barrier publishes a drain barrier with id to every partition the
// publisher sends events to, after everything published before the call
// on that partition, and returns once the barriers and everything
// published before them are acknowledged by Kafka.
//
// Ordering follows from how records are produced: Publish hands each
// event to the producer before it returns, records of one partition keep
// the order they were handed over in (idempotent producer), and each
// barrier is pinned to its partition as a truncate is (see Broadcast).
// So whatever the source handed over before calling Barrier lies before
// the barrier in its partition, and once the sink group has committed
// past every barrier, all of it has been applied or dead-lettered.
func (p *Publisher) Barrier(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("barrier: a drain ID is required")
	}
	if err := p.checkPartitions(ctx); err != nil {
		return err
	}
	n := int(p.opts.Partitions)
	durable := make(chan struct{})
	t := &ticket{remaining: n + 1, onDurable: func() { close(durable) }}
	broken, err := p.enqueue(t)
	if err != nil {
		return err
	}
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			err = fmt.Errorf("produce drain barrier to %s[%d]: %w", r.Topic, r.Partition, err)
		}
		p.finish(t, err)
	}
	for i := range n {
		p.cl.Produce(ctx, barrierRecord(p.opts.Topic, id, int32(i), p.opts.Partitions), promise)
	}
	p.finish(t, nil)
	select {
	case <-durable:
		return nil
	case <-broken:
		return p.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}
