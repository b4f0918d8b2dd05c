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
	// OpTruncate removes every key of Scope whose version is older than
	// the event's and that maps to the event's partition. A source sends
	// one to every partition after re-reading a whole keyspace (after a
	// gap in live capture, or a FLUSHDB): every key that still exists was
	// re-published first with a newer version, so what the sweep removes
	// are exactly the keys deleted while changes could not be seen.
	OpTruncate
)

func (o Op) String() string {
	switch o {
	case OpUpsert:
		return "upsert"
	case OpDelete:
		return "delete"
	case OpTruncate:
		return "truncate"
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
	// primary key. Binary-safe, and it may be empty: Redis accepts
	// SET "" v, and the empty key is copied like any other (a target that
	// cannot hold it rejects it as unmappable). It is also the Kafka
	// record key, so every event of one key lands on one partition, in
	// order. Only a truncate event has no key at all.
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
	// Chunk is set when a key too large for one event travels in pieces;
	// nil for a whole value.
	Chunk *Chunk
	// Scope is what an OpTruncate event covers; nil otherwise.
	Scope *Scope
}

// Chunk places one piece of a key that a source read in several pieces,
// all with the same version. Piece 0 replaces the key's value (if its
// version is newer); each later piece adds its elements only while the key
// still holds that version, so a newer version that arrives in between
// wins. Between the first and the last piece the target holds part of the
// value.
type Chunk struct {
	// Index is 0 for the first piece.
	Index int
	// Offset is the position of the piece's first element in the whole
	// value (of its first byte, for a string), so that re-applying a list
	// or string piece is idempotent.
	Offset int64
	// Last is true on the final piece.
	Last bool
}

// Scope says which keys a truncate event covers.
type Scope struct {
	// Filter selects keys by pattern, as the source did.
	Filter KeyFilter
	// Slots are inclusive Redis Cluster slot ranges; nil means every slot.
	Slots [][2]int
	// Partition is the Kafka partition the event was sent to, of
	// Partitions: only keys that map to it (PartitionOf) are covered, so
	// that each partition's sweep runs after that partition's re-reads.
	// Partitions is the count the publisher sends every key by, fixed for
	// the publisher's life: a topic that grows meanwhile keeps getting
	// each key on PartitionOf(key, Partitions) until the source restarts.
	Partition  int32
	Partitions int32
}

// Covers reports whether key is in the scope.
func (s *Scope) Covers(key []byte) bool {
	if s.Partitions > 0 && PartitionOf(key, s.Partitions) != s.Partition {
		return false
	}
	if len(s.Slots) > 0 {
		slot := RedisSlot(key)
		in := false
		for _, r := range s.Slots {
			if slot >= r[0] && slot <= r[1] {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	return s.Filter.Keep(string(key))
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
	if e.Op == OpTruncate {
		switch {
		case len(e.Key) != 0 || e.Value.Type != TypeNone || e.Chunk != nil:
			return fmt.Errorf("%w: a truncate event has no key, value or chunk", ErrInvalidEvent)
		case e.Scope == nil || e.Scope.Partitions <= 0 || e.Scope.Partition < 0 || e.Scope.Partition >= e.Scope.Partitions:
			return fmt.Errorf("%w: a truncate event needs a scope with a partition", ErrInvalidEvent)
		case len(e.Version) == 0:
			return fmt.Errorf("%w: a truncate event has no version", ErrInvalidEvent)
		}
		for _, r := range e.Scope.Slots {
			if r[0] < 0 || r[1] >= SlotCount || r[0] > r[1] {
				return fmt.Errorf("%w: slot range %v", ErrInvalidEvent, r)
			}
		}
		return nil
	}
	if e.Scope != nil {
		return fmt.Errorf("%w: key %q: only a truncate event has a scope", ErrInvalidEvent, e.Key)
	}
	// The empty key is a key (Redis accepts SET "" v): it is valid here,
	// and a target that cannot hold it rejects it as unmappable.
	if len(e.Version) == 0 {
		return fmt.Errorf("%w: key %q has no version", ErrInvalidEvent, e.Key)
	}
	switch e.Op {
	case OpUpsert:
		if err := e.Value.Validate(); err != nil {
			return fmt.Errorf("%w: key %q: %w", ErrInvalidEvent, e.Key, err)
		}
	case OpDelete:
		if e.Value.Type != TypeNone || e.Chunk != nil {
			return fmt.Errorf("%w: key %q: a delete carries no value", ErrInvalidEvent, e.Key)
		}
	default:
		return fmt.Errorf("%w: key %q: unknown op %d", ErrInvalidEvent, e.Key, e.Op)
	}
	if c := e.Chunk; c != nil {
		switch {
		case c.Index < 0 || c.Offset < 0:
			return fmt.Errorf("%w: key %q: negative chunk index or offset", ErrInvalidEvent, e.Key)
		case e.Value.Type == TypeItem:
			return fmt.Errorf("%w: key %q: a %s is never sent in chunks", ErrInvalidEvent, e.Key, e.Value.Type)
		}
	}
	switch e.Origin {
	case OriginSnapshot, OriginLive, OriginRepair:
	default:
		return fmt.Errorf("%w: key %q: unknown origin %d", ErrInvalidEvent, e.Key, e.Origin)
	}
	return nil
}

// Ops lists the operations, in their order.
var Ops = []Op{OpUpsert, OpDelete, OpTruncate}

// OpCounts counts events by operation.
type OpCounts struct {
	Upserts, Deletes, Truncates int64
}

// Of returns the count of op.
func (c OpCounts) Of(op Op) int64 {
	switch op {
	case OpUpsert:
		return c.Upserts
	case OpDelete:
		return c.Deletes
	case OpTruncate:
		return c.Truncates
	}
	return 0
}
