package reconcile

import (
	"context"
	"time"

	"github.com/cutover/cutover/pipeline"
)

// Source yields the source's keys a page at a time, read as events.
type Source interface {
	// Next returns the next page; done is true after the last one.
	Next(ctx context.Context) (b pipeline.Batch, done bool, err error)
}

// KeyLister is a target that can list its keys, for the pass that finds
// keys present only in the target.
type KeyLister interface {
	// ListKeys calls fn with the target's live keys, a page at a time.
	ListKeys(ctx context.Context, fn func(keys [][]byte) error) error
}

// Checker is a source that can say which keys exist.
type Checker interface {
	// Exists reports, for each key, whether the source has it (and whether
	// the pipeline would copy it: filters apply).
	Exists(ctx context.Context, keys [][]byte) (map[string]bool, error)
}

// Target looks keys up in the target.
type Target interface {
	// Lookup returns what the target holds for each key it can address;
	// keys it cannot address (see Found) are absent from the map.
	Lookup(ctx context.Context, keys [][]byte) (map[string]Found, error)
}

// Expecter is a target that keeps values in a form of its own (a DynamoDB
// item as a Redis hash or JSON string): reconcile compares what it holds
// with what Expect says the pipeline writes for the event.
type Expecter interface {
	Expect(e *pipeline.Event) (pipeline.Value, error)
}

// Reader is a source that can read keys again, for the re-check of a
// difference and for repair.
type Reader interface {
	// Read returns the source's current state of each key: an upsert
	// event for a key it has and would copy, a delete event (or nothing)
	// for a key it does not have, a reject for a key it cannot express as
	// an event. Each event carries a version at least as new as the read.
	Read(ctx context.Context, keys [][]byte) (pipeline.Batch, error)
}

// Repairer carries repairs into the pipeline.
type Repairer interface {
	// Repair publishes events to the pipeline's topic. They may still be
	// on their way when it returns: ctx stays alive until Wait.
	Repair(ctx context.Context, events []pipeline.Event) error
	// Wait returns once every repair published so far is applied to the
	// target.
	Wait(ctx context.Context) error
}

// Versioner is a target whose Lookup leaves Found.Version out (reading
// versions costs a round trip per page); KeyVersions gives them for the
// keys re-checked.
type Versioner interface {
	KeyVersions(ctx context.Context, keys [][]byte) (map[string]pipeline.Version, error)
}

// Found is the target's state of one key.
type Found struct {
	// Exists is false when the key is absent (or deleted).
	Exists   bool
	Value    pipeline.Value
	ExpireAt time.Time
	// Version is the version the target holds for the key, a tombstone's
	// included; nil when it keeps none.
	Version pipeline.Version
	// Err says why an existing key could not be read back as a value.
	Err error
}
