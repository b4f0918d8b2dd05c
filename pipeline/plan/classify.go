package plan

import (
	"fmt"
	"time"

	"github.com/cutover/cutover/pipeline"
)

// Why a sampled key cannot be carried (Key.Reason); the run dead-letters
// each.
const (
	ReasonItemTooLarge = "dynamodb-item-over-400kb"
	ReasonPieces       = "read-in-pieces"
	ReasonUnmappable   = "unmappable"
	ReasonOversize     = "over-max-record-bytes"
)

// VersionKeyBytes is about what the Redis sink's version of a key takes
// besides the key's own bytes: a field of its slot's version bucket, a
// packed hash (sinks/redis/versions.go), holding the key's name and about
// 11 bytes of version, with 4 more for a deadline when the key expires,
// (measured: 18 bytes and the key, at 1,000,000 keys); the buckets
// themselves are counted once (VersionBucketBytes).
const VersionKeyBytes = 18

// VersionBucketBytes is what a version bucket itself takes (MEMORY USAGE
// of a hash with one field, less the field).
const VersionBucketBytes = 72

// ItemMapper is a DynamoDB target's mapping, as its sink does it: the
// size DynamoDB counts of the item it writes for e, or an error wrapping
// pipeline.ErrUnmappable for an event the sink rejects.
type ItemMapper interface {
	ItemBytes(e *pipeline.Event, now time.Time) (int64, error)
}

// Renderer is a Redis target's rendering of a DynamoDB item, as its sink
// does it: the Redis key and value it writes for e.
type Renderer interface {
	Render(e *pipeline.Event) (string, pipeline.Value, error)
}

// Classifier says what the pipeline would do with each sampled key: its
// size in Kafka, and whether and how the target can hold it.
type Classifier struct {
	// MaxRecordBytes is kafka.max_record_bytes: a larger event is refused.
	MaxRecordBytes int
	// DynamoDBTarget is set for a DynamoDB target; Items is its mapping,
	// nil when it is unknown (the target could not be checked).
	DynamoDBTarget bool
	Items          ItemMapper
	// MaxItemBytes is the largest item the DynamoDB target stores.
	MaxItemBytes int64
	// RedisMemory is set to count what keys take in a Redis target.
	RedisMemory bool
	// Renderer, for a Redis target of DynamoDB items, sizes the Redis key
	// each item becomes.
	Renderer Renderer
}

// Event is what the pipeline would do with one event read now; for a
// Redis target of DynamoDB items, with the memory its key will take.
func (c *Classifier) Event(e *pipeline.Event, now time.Time) Key {
	k := c.event(e, now)
	if c.Renderer != nil && k.Reason == "" {
		c.render(&k, e)
	}
	return k
}

// RedisEvent is Event for an event of a Redis source whose key takes
// memory bytes there (MEMORY USAGE): a Redis target takes as much, and
// the key's version.
func (c *Classifier) RedisEvent(e *pipeline.Event, memory int64, now time.Time) Key {
	k := c.Event(e, now)
	if c.RedisMemory && k.Reason == "" {
		k.MemoryBytes = memory + VersionKeyBytes + int64(len(e.Key))
	}
	return k
}

// event sizes e in Kafka and, for a DynamoDB target, the item the sink's
// mapping makes of it.
func (c *Classifier) event(e *pipeline.Event, now time.Time) Key {
	k := Key{Name: string(e.Key), Type: e.Value.Type.String(), Events: 1, TTL: !e.ExpireAt.IsZero()}
	if k.TTL {
		k.ExpiresIn = e.ExpireAt.Sub(now)
	}
	enc, err := pipeline.Encode(nil, e)
	if err != nil {
		k.Reason, k.Detail = pipeline.RejectInvalid, err.Error()
		return k
	}
	k.Bytes = int64(len(enc) + len(e.Key))
	if max := c.MaxRecordBytes; k.Bytes > int64(max) {
		k.Reason = ReasonOversize
		k.Detail = fmt.Sprintf("its event of %d bytes is over kafka.max_record_bytes (%d)", k.Bytes, max)
		return k
	}
	if c.Items == nil {
		return k
	}
	// Every error of the mapping wraps pipeline.ErrUnmappable: the sink
	// rejects (dead-letters) the event.
	size, err := c.Items.ItemBytes(e, now)
	switch {
	case err != nil:
		k.Reason, k.Detail = ReasonUnmappable, err.Error()
	case size > c.MaxItemBytes:
		k.Reason = ReasonItemTooLarge
		k.Detail = fmt.Sprintf("its item is %d bytes after mapping, over DynamoDB's %d (exclude the key, or copy it to a Redis target)",
			size, c.MaxItemBytes)
	default:
		k.ItemBytes = size
	}
	return k
}

// Batch counts a page of sampled keys into t: each event as the pipeline
// would treat it, each of the reader's rejects as not carried. memory is
// each key's MEMORY USAGE in a Redis source (see RedisEvent), nil for a
// source that is not Redis. It returns the bytes the events take in
// Kafka, which pace the sample's reads.
func (c *Classifier) Batch(t *Tally, b *pipeline.Batch, memory map[string]int64, now time.Time) (kafkaBytes int64) {
	for i := range b.Events {
		e := &b.Events[i]
		var k Key
		if memory != nil {
			k = c.RedisEvent(e, memory[string(e.Key)], now)
		} else {
			k = c.Event(e, now)
		}
		t.Add(k)
		kafkaBytes += k.Bytes
	}
	for _, rej := range b.Rejects {
		t.Add(Rejected(rej.Key, rej.Class, rej.Err, memory[string(rej.Key)]))
	}
	return kafkaBytes
}

// render sizes the Redis key and value an item becomes in a Redis
// target, or says why the sink cannot map it.
func (c *Classifier) render(k *Key, e *pipeline.Event) {
	key, v, err := c.Renderer.Render(e)
	if err != nil {
		k.Reason, k.Detail = ReasonUnmappable, err.Error()
		return
	}
	k.MemoryBytes = redisKeyBytes(key, &v) + VersionKeyBytes + int64(len(key))
}

// Rejected is a key the source could not read as an event (class says
// why, as the reader's reject does); memory is what it takes in the
// source, when known.
func Rejected(key []byte, class string, err error, memory int64) Key {
	return Key{Name: string(key), Type: "not read", Bytes: memory, Events: 1, Reason: class, Detail: err.Error()}
}

// Pieces is a big key the source reads in pieces of at most chunk bytes:
// a collection of typ with elements elements, taking memory bytes in the
// source.
func (c *Classifier) Pieces(key, typ string, elements, memory, chunk int64) Key {
	k := Key{Name: key, Type: typ, Bytes: memory, Events: max(1, (memory+chunk-1)/chunk), Chunked: true}
	switch {
	case c.DynamoDBTarget:
		k.Reason = ReasonPieces
		k.Detail = fmt.Sprintf("a %s of %d elements (%s in memory) is read in pieces of at most %d bytes, and a DynamoDB item cannot be written in pieces (exclude the key, or copy it to a Redis target)",
			typ, elements, FormatBytes(memory), chunk)
	case c.RedisMemory:
		k.MemoryBytes = memory + VersionKeyBytes + int64(len(key))
	}
	return k
}

// AddVersionBuckets adds to a Redis target's memory the version buckets'
// own cost: one hash per hash slot (or bucketsPerSlot per slot) that
// holds a key.
func (e *Estimate) AddVersionBuckets(bucketsPerSlot int) {
	if e.RedisMemory > 0 {
		buckets := int64(pipeline.SlotCount) * int64(max(bucketsPerSlot, 1))
		e.RedisMemory += VersionBucketBytes * min(e.Carried, buckets)
	}
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

// FormatBytes formats a byte count for people: 512 B, 1.5 KiB, 2.0 GiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
