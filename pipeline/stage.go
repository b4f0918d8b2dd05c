package pipeline

import "context"

// Publisher is how a source hands events to the pipeline's log:
// pipeline/kafka.Publisher implements it for a Kafka topic. Every source
// publishes through it and nothing else.
type Publisher interface {
	// Publish hands over a batch: its events, in order, and a dead-letter
	// record for each of its rejects. It returns once they are buffered
	// (it blocks while the buffer is full: the source's backpressure).
	// onDurable, if not nil, runs once the batch and every batch handed
	// over before it are acknowledged, in order: the moment a source may
	// save a position past them.
	Publish(ctx context.Context, b Batch, onDurable func()) error
	// Broadcast sends a truncate event to every partition, after
	// everything published before it there.
	Broadcast(ctx context.Context, e Event, onDurable func()) error
	// Flush waits until everything handed over is acknowledged.
	Flush(ctx context.Context) error
}
