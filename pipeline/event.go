package pipeline

import (
	"fmt"
	"time"
)

// Op says what an event does to its key.
type Op uint8

const (
	// OpUpsert sets the key to the event's Value (and ExpireAt), replacing
	// whatever the target held.
	OpUpsert Op = iota + 1
	// OpDelete removes the key. Sinks keep a tombstone with the version so
	// that an older upsert arriving later cannot bring the key back.
	OpDelete
)

func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	default:
		return fmt.Sprintf("op(%d)", uint8(o))
	}
}

// Origin says how the source came to read the key.
type Origin uint8

const (
	// OriginSnapshot is a read made by a snapshot (Redis SCAN, DynamoDB Scan).
	OriginSnapshot Origin = iota + 1
	// OriginLive is a change captured while replicating (keyspace
	// notification, DynamoDB stream record).
	OriginLive
	// OriginRepair is a re-read published by `cutover reconcile --repair`.
	OriginRepair
)

func (o Origin) String() string {
	switch o {
	case OriginSnapshot:
		return "snapshot"
	case OriginLive:
		return "live"
	case OriginRepair:
		return "repair"
	default:
		return fmt.Sprintf("origin(%d)", uint8(o))
	}
}

// Event is one change of one key, as published to Kafka.
//
// An upsert carries the key's whole current state (Value and ExpireAt), never
// a delta: applying an event does not depend on what was applied before it,
// which is what makes apply idempotent and replays safe.
type Event struct {
	// Key is the source key: a Redis key, or for DynamoDB the encoded
	// primary key. Binary-safe. It is also the Kafka record key, so every
	// event of one key lands on one partition, in order.
	Key []byte
	Op  Op
	// Origin says whether a snapshot, live capture or repair produced it.
	Origin Origin
	// Version orders events of the same key; see Version.
	Version Version
	// Value is the key's state after the change; zero for OpDelete.
	Value Value
	// ExpireAt is the absolute expiry of the key; zero when it has none.
	ExpireAt time.Time
	// Source describes where and when the event was read.
	Source SourceInfo
}

// SourceInfo is the Debezium-style "source" block of an event.
type SourceInfo struct {
	// Connector is the kind of source: "redis" or "dynamodb".
	Connector string
	// Name is the pipeline's name, so events of several pipelines sharing
	// a topic can be told apart.
	Name string
	// DB is the Redis logical database the key was read from.
	DB int
	// Table is the DynamoDB table the item was read from.
	Table string
	// Node is the address of the Redis node (or DynamoDB stream shard) read.
	Node string
	// Position is the source's opaque position at this event (a SCAN
	// cursor, a stream sequence number), for operators and debugging.
	Position []byte
	// Time is when the source read the key, by the source's clock where it
	// has one (Redis TIME, stream ApproximateCreationDateTime).
	Time time.Time
}

// Validate reports whether e is well formed: what every sink may assume
// about an event it is given.
func (e *Event) Validate() error {
	if len(e.Key) == 0 {
		return fmt.Errorf("%w: empty key", ErrInvalidEvent)
	}
	if len(e.Version) == 0 {
		return fmt.Errorf("%w: key %q has no version", ErrInvalidEvent, e.Key)
	}
	switch e.Op {
	case OpUpsert:
		if err := e.Value.Validate(); err != nil {
			return fmt.Errorf("%w: key %q: %w", ErrInvalidEvent, e.Key, err)
		}
	case OpDelete:
		if e.Value.Type != TypeNone {
			return fmt.Errorf("%w: key %q: a delete carries no value", ErrInvalidEvent, e.Key)
		}
	default:
		return fmt.Errorf("%w: key %q: unknown op %d", ErrInvalidEvent, e.Key, e.Op)
	}
	switch e.Origin {
	case OriginSnapshot, OriginLive, OriginRepair:
	default:
		return fmt.Errorf("%w: key %q: unknown origin %d", ErrInvalidEvent, e.Key, e.Origin)
	}
	return nil
}
