package plan

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/pipeline"
)

// items is a DynamoDB target's mapping: an item of a fixed size, or the
// sink's refusal.
type items struct {
	size int64
	err  error
}

func (m items) ItemBytes(*pipeline.Event, time.Time) (int64, error) { return m.size, m.err }

type renderer struct{ err error }

func (r renderer) Render(e *pipeline.Event) (string, pipeline.Value, error) {
	return "user:" + string(e.Key), pipeline.Value{Type: pipeline.TypeString, String: []byte("12345")}, r.err
}

func event(key string, value int) *pipeline.Event {
	return &pipeline.Event{Key: []byte(key), Op: pipeline.OpUpsert, Origin: pipeline.OriginSnapshot,
		Version: pipeline.ClockVersion(1, 5, false), Value: pipeline.Value{Type: pipeline.TypeString, String: make([]byte, value)}}
}

// Each outcome a sampled key can have, as the run would have it.
func TestClassifier(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	unmappable := fmt.Errorf("%w: no rule", pipeline.ErrUnmappable)
	for name, c := range map[string]struct {
		c          Classifier
		memory     int64
		reason     string
		item, mem  int64
		redisEvent bool
	}{
		"fits Kafka, no target mapping": {c: Classifier{MaxRecordBytes: 1 << 20}},
		"over max_record_bytes":         {c: Classifier{MaxRecordBytes: 100, Items: items{size: 10}}, reason: ReasonOversize},
		"item fits":                     {c: Classifier{MaxRecordBytes: 1 << 20, Items: items{size: 500}, MaxItemBytes: 1000}, item: 500},
		"item too large":                {c: Classifier{MaxRecordBytes: 1 << 20, Items: items{size: 1001}, MaxItemBytes: 1000}, reason: ReasonItemTooLarge},
		"unmappable":                    {c: Classifier{MaxRecordBytes: 1 << 20, Items: items{err: unmappable}}, reason: ReasonUnmappable},
		"redis memory":                  {c: Classifier{MaxRecordBytes: 1 << 20, RedisMemory: true}, memory: 100, redisEvent: true, mem: 100 + VersionKeyBytes + 3},
		"no redis memory for a reject":  {c: Classifier{MaxRecordBytes: 10, RedisMemory: true}, memory: 100, redisEvent: true, reason: ReasonOversize},
		"rendered item":                 {c: Classifier{MaxRecordBytes: 1 << 20, RedisMemory: true, Renderer: renderer{}}, mem: 48 + 8 + 5 + 8 + VersionKeyBytes + 8},
		"item not rendered":             {c: Classifier{MaxRecordBytes: 1 << 20, Renderer: renderer{err: unmappable}}, reason: ReasonUnmappable},
	} {
		t.Run(name, func(t *testing.T) {
			e := event("k:1", 50)
			k := c.c.Event(e, now)
			if c.redisEvent {
				k = c.c.RedisEvent(e, c.memory, now)
			}
			if k.Reason != c.reason || k.ItemBytes != c.item || k.MemoryBytes != c.mem {
				t.Fatalf("reason %q item %d memory %d (%s), want %q %d %d", k.Reason, k.ItemBytes, k.MemoryBytes, k.Detail, c.reason, c.item, c.mem)
			}
			if k.Bytes <= 50 || k.Events != 1 {
				t.Errorf("bytes %d events %d: an event is its encoded value and key", k.Bytes, k.Events)
			}
		})
	}
}

// A key read in pieces cannot be written to DynamoDB; a Redis target
// holds it, and it costs one event a piece.
func TestClassifierPieces(t *testing.T) {
	d := (&Classifier{DynamoDBTarget: true}).Pieces("big", "hash", 3000, 2500, 1000)
	if d.Reason != ReasonPieces || d.Events != 3 || !d.Chunked || !strings.Contains(d.Detail, "2.4 KiB in memory") {
		t.Errorf("dynamodb target: %+v", d)
	}
	r := (&Classifier{RedisMemory: true}).Pieces("big", "hash", 3000, 2500, 1000)
	if r.Reason != "" || r.MemoryBytes != 2500+VersionKeyBytes+3 {
		t.Errorf("redis target: %+v", r)
	}
	if k := Rejected([]byte("k"), "refused", errors.New("NOPERM"), 7); k.Reason != "refused" || k.Bytes != 7 || k.Detail != "NOPERM" {
		t.Errorf("rejected: %+v", k)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 3 << 30: "3.0 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// The version buckets count once per slot that holds a key.
func TestAddVersionBuckets(t *testing.T) {
	e := Estimate{RedisMemory: 1000, Carried: 10}
	e.AddVersionBuckets(0)
	if e.RedisMemory != 1000+10*VersionBucketBytes {
		t.Errorf("few keys: %d", e.RedisMemory)
	}
	e = Estimate{RedisMemory: 1, Carried: 1 << 30}
	e.AddVersionBuckets(2)
	if e.RedisMemory != 1+2*int64(pipeline.SlotCount)*VersionBucketBytes {
		t.Errorf("many keys: %d", e.RedisMemory)
	}
	e = Estimate{Carried: 10}
	if e.AddVersionBuckets(1); e.RedisMemory != 0 {
		t.Errorf("not a Redis target: %d", e.RedisMemory)
	}
}

// Batch counts a page as Event or RedisEvent would, and the reader's
// rejects as not carried. A DynamoDB source (nil memory) keeps the
// memory its rendered Redis key takes; a Redis source's keys take what
// MEMORY USAGE said.
func TestClassifierBatch(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := pipeline.Batch{Events: []pipeline.Event{*event("a", 10), *event("b", 10)},
		Rejects: []pipeline.Reject{{Key: []byte("c"), Class: "too-many-elements", Err: errors.New("over max_elements")}}}
	redis := Classifier{MaxRecordBytes: 1 << 20, RedisMemory: true}
	var tl Tally
	bytes := redis.Batch(&tl, &b, map[string]int64{"a": 100, "b": 200, "c": 300}, now)
	want := redis.RedisEvent(&b.Events[0], 100, now).Bytes + redis.RedisEvent(&b.Events[1], 200, now).Bytes
	if bytes != want {
		t.Errorf("bytes %d, want %d", bytes, want)
	}
	e := tl.Estimate(3, true)
	if e.Carried != 2 || e.NotCarried != 1 || e.RedisMemory != 300+2*(VersionKeyBytes+1) {
		t.Errorf("redis source: carried %d, not carried %d, memory %d", e.Carried, e.NotCarried, e.RedisMemory)
	}
	items := Classifier{MaxRecordBytes: 1 << 20, RedisMemory: true, Renderer: renderer{}}
	tl = Tally{}
	items.Batch(&tl, &b, nil, now)
	rendered := items.Event(&b.Events[0], now).MemoryBytes
	if e := tl.Estimate(3, true); e.RedisMemory != 2*rendered || e.NotCarried != 1 {
		t.Errorf("dynamodb source: memory %d, want %d (rendered keys); not carried %d", e.RedisMemory, 2*rendered, e.NotCarried)
	}
}
