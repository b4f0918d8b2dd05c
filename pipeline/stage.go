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

// Sink is how a worker hands events to a target store: sinks/dynamodb
// and sinks/redis implement it, pipeline/kafka.Worker calls it.
type Sink interface {
	// Apply applies a batch and returns one Result per event, in order.
	// Events of one key are in partition order; a sink may apply different
	// keys concurrently but must keep each key's events in order (or keep
	// only the newest version of a key: versioned apply makes the end state
	// the same). A truncate event always comes alone: the sink removes
	// every key its scope covers whose version is older than the event's.
	//
	// An error means the batch was not (entirely) applied and must not be
	// committed: the context ended, or the sink gave up on a failure it
	// cannot classify. Events a sink can never apply are Rejected results,
	// not errors.
	Apply(ctx context.Context, events []Event) ([]Result, error)
}

// Source reads a store into the pipeline: sources/redis and
// sources/dynamodb implement it. Run publishes until ctx ends (live
// capture) or its snapshot is durable (a backfill), and returns the
// first failure it cannot get past.
type Source interface {
	Run(ctx context.Context) error
}
