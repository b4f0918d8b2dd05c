package kafka

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

// fakeClusterWith is a fake cluster whose topics (3 partitions each) have
// the given max.message.bytes ("" keeps the default, 1,048,588 bytes as
// on a real broker).
func fakeClusterWith(t *testing.T, maxMessageBytes map[string]string) Config {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := Config{Brokers: c.ListenAddrs(), ClientID: t.Name()}
	cl, err := Connect(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for topic, limit := range maxMessageBytes {
		spec := TopicSpec{Name: topic, Partitions: 3, ReplicationFactor: 1}
		if limit != "" {
			spec.Configs = map[string]*string{"max.message.bytes": &limit}
		}
		if _, err := EnsureTopic(ctxT(t), cl, spec); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// produceRaw writes records as they are, with a client that batches up to
// 8 MiB.
func produceRaw(t *testing.T, cfg Config, recs ...*kgo.Record) {
	t.Helper()
	cl, err := Connect(ctxT(t), cfg, kgo.ProducerBatchMaxBytes(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// runToEnd runs a worker until it has committed everything in the topic,
// and fails the test if it stops first.
func runToEnd(t *testing.T, cfg Config, opts WorkerOptions, sink pipeline.Sink) *Worker {
	t.Helper()
	cl, err := Connect(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := EndOffsets(ctxT(t), cl, opts.Topic)
	if err != nil {
		t.Fatal(err)
	}
	wcl, err := Connect(ctxT(t), cfg, WorkerOpts(opts)...)
	if err != nil {
		t.Fatal(err)
	}
	defer wcl.Close()
	w, err := NewWorker(ctxT(t), wcl, opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	done := make(chan error, 1)
	go func() { done <- w.Progress().WaitFor(ctx, ends, nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker did not commit to the end %v: %v (committed %v, stats %+v)", ends, err, w.Progress().Committed(), w.Stats())
		}
	case err := <-errc:
		t.Fatalf("worker stopped before committing to the end: %v (stats %+v)", err, w.Stats())
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("worker stopped with %v", err)
	}
	return w
}

// incompressible returns n bytes that no codec shrinks: a broker measures
// a batch after compression, so only such values reach its size limit.
func incompressible(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// rejectedEvent is an event record whose value is about valueBytes of
// base64 of random bytes (which snappy, lz4 and zstd cannot shrink).
func rejectedEvent(t *testing.T, key string, micros uint64, valueBytes int) *kgo.Record {
	t.Helper()
	e := stringEvent(key, micros, base64.StdEncoding.EncodeToString(incompressible(valueBytes*3/4)))
	b, err := pipeline.Encode(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	return &kgo.Record{Topic: "events", Key: e.Key, Value: b}
}

// An event that fails Validate used to stop the publisher for good: it
// "is a bug of the source", so Publish failed that call and every later
// one, and the source's checkpoint never moved past it. One event must
// not stop a pipeline: it is dead-lettered (class "invalid", logged with
// its key and reason, counted) and the rest of its batch, and every later
// batch, is published and reported durable.
func TestPublisherDeadLettersAnInvalidEvent(t *testing.T) {
	cfg := fakeCluster(t, "events", "events.dlq")
	opts := PublisherOptions{Topic: "events", DeadLetterTopic: "events.dlq"}
	p := newPublisher(t, cfg, opts)
	invalid := stringEvent("no-version", 1, "x")
	invalid.Version = nil
	durable := 0
	for b := range 3 {
		evs := []pipeline.Event{stringEvent(fmt.Sprint("a", b), 1, "x"), stringEvent(fmt.Sprint("b", b), 1, "y")}
		if b == 1 {
			evs = []pipeline.Event{evs[0], invalid, evs[1]}
		}
		if err := p.Publish(ctxT(t), pipeline.Batch{Events: evs}, func() { durable++ }); err != nil {
			t.Fatalf("Publish of batch %d: %v", b, err)
		}
	}
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if durable != 3 {
		t.Fatalf("%d of 3 batches reported durable", durable)
	}
	if st := p.Stats(); st.Published != 6 || st.DeadLettered != 1 || st.Invalid != 1 {
		t.Fatalf("stats = %+v, want 6 published, 1 invalid dead-lettered", st)
	}
	dlq := consumeAll(t, cfg, "events.dlq", 1)
	hdr := headers(dlq[0])
	if string(dlq[0].Key) != "no-version" || hdr[HeaderErrorClass] != ClassInvalid || hdr[HeaderStage] != "source" ||
		!strings.Contains(hdr[HeaderError], "has no version") {
		t.Fatalf("dead letter: key %q, headers %v", dlq[0].Key, hdr)
	}

	// A truncate is the source's own message, not data: a bad one is an
	// error of Broadcast, and publishes nothing.
	bad := pipeline.Event{Op: pipeline.OpTruncate, Origin: pipeline.OriginLive, Scope: &pipeline.Scope{}}
	if err := p.Broadcast(ctxT(t), bad, nil); !errors.Is(err, pipeline.ErrInvalidEvent) {
		t.Fatalf("Broadcast of a truncate without a version = %v, want ErrInvalidEvent", err)
	}
}

func headers(r *kgo.Record) map[string]string {
	hdr := map[string]string{}
	for _, h := range r.Headers {
		hdr[h.Key] = string(h.Value)
	}
	return hdr
}

// A dead letter is the original record plus error headers. For a record
// near the dead-letter topic's max.message.bytes, that is more than the
// topic accepts: the broker refused it, the worker stopped without
// committing, and every restart stopped at the same record, forever. Now a
// dead letter that would be too large leaves the value out (and says so),
// keeps the key, the error and where the original is, and is written.
func TestWorkerDeadLetterLargerThanTheTopicAccepts(t *testing.T) {
	cfg := fakeClusterWith(t, map[string]string{"events": "4000000", "events.dlq": ""})
	const size = 1_047_000 // under 1,048,588 alone, over it with the headers
	garbage := &kgo.Record{Topic: "events", Key: []byte("garbage"), Value: incompressible(1_048_000)}
	produceRaw(t, cfg, rejectedEvent(t, "too-big", 1, size), garbage, rejectedEvent(t, "fine", 1, 10))

	sink := &memSink{store: map[string]pipeline.Event{}, rejects: map[string]bool{"too-big": true}}
	w := runToEnd(t, cfg, WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq"}, sink)
	if st := w.Stats(); st.Applied != 1 || st.DeadLettered != 2 {
		t.Fatalf("stats = %+v, want 1 applied and 2 dead-lettered", st)
	}
	got := map[string]*kgo.Record{}
	for _, r := range consumeAll(t, cfg, "events.dlq", 2) {
		got[string(r.Key)] = r
	}
	for key, class := range map[string]string{"too-big": ClassUnmappable, "garbage": ClassDecode} {
		r := got[key]
		if r == nil {
			t.Fatalf("no dead letter for %q (have %v)", key, got)
		}
		hdr := headers(r)
		if len(r.Value) != 0 || hdr[HeaderValueLeftOut] == "" || hdr[HeaderErrorClass] != class || hdr[HeaderError] == "" ||
			hdr[HeaderTopic] != "events" || hdr[HeaderPartition] == "" || hdr[HeaderOffset] == "" || hdr[HeaderValueSize] == "" {
			t.Errorf("dead letter of %q: %d bytes of value, headers %v", key, len(r.Value), hdr)
		}
	}
}

// Each dead letter of a batch fitted the topic, but franz-go put the ones
// of one dead-letter partition into a single record batch of up to
// 16 MiB, and a broker refuses a batch over max.message.bytes as a whole:
// two 600 KB rejects of one key stopped the worker for good. Batches of
// dead letters are now bounded like the dead letters themselves.
func TestWorkerDeadLettersThatFitOnlyOneByOne(t *testing.T) {
	cfg := fakeClusterWith(t, map[string]string{"events": "4000000", "events.dlq": ""})
	produceRaw(t, cfg, rejectedEvent(t, "big", 1, 600_000), rejectedEvent(t, "big", 2, 600_000))

	sink := &memSink{store: map[string]pipeline.Event{}, rejects: map[string]bool{"big": true}}
	w := runToEnd(t, cfg, WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq"}, sink)
	if st := w.Stats(); st.DeadLettered != 2 {
		t.Fatalf("stats = %+v, want 2 dead-lettered", st)
	}
	for _, r := range consumeAll(t, cfg, "events.dlq", 2) {
		if len(r.Value) < 600_000 || headers(r)[HeaderValueLeftOut] != "" {
			t.Fatalf("dead letter lost its value (%d bytes, headers %v), yet it fits the topic", len(r.Value), headers(r))
		}
	}
}

// A dead-letter topic whose max.message.bytes is below the worker's limit
// refuses a dead letter the worker thought fine: it is written again
// without its value rather than stop the worker.
func TestWorkerDeadLetterRefusedByASmallTopic(t *testing.T) {
	cfg := fakeClusterWith(t, map[string]string{"events": "", "events.dlq": "20000"})
	produceRaw(t, cfg, rejectedEvent(t, "mid", 1, 100_000), rejectedEvent(t, "small", 1, 10))

	sink := &memSink{store: map[string]pipeline.Event{}, rejects: map[string]bool{"mid": true, "small": true}}
	w := runToEnd(t, cfg, WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq"}, sink)
	if st := w.Stats(); st.DeadLettered != 2 {
		t.Fatalf("stats = %+v, want 2 dead-lettered", st)
	}
	got := map[string]*kgo.Record{}
	for _, r := range consumeAll(t, cfg, "events.dlq", 2) {
		got[string(r.Key)] = r
	}
	if r := got["mid"]; r == nil || len(r.Value) != 0 || !strings.Contains(headers(r)[HeaderValueLeftOut], "refused") {
		t.Fatalf("dead letter of mid: %v", r != nil && len(r.Value) != 0)
	}
	if r := got["small"]; r == nil || len(r.Value) == 0 {
		t.Fatal("dead letter of small lost its value")
	}
}

// A source's dead letter carries the whole key. A key larger than the
// producer's batch limit (Redis keys can be up to 512 MB) made franz-go
// refuse the dead letter itself, and the publisher failed every publish
// after it. Its dead letter now keeps the start of the key and its size.
func TestPublisherDeadLetterOfAHugeKey(t *testing.T) {
	cfg := fakeCluster(t, "events", "events.dlq")
	opts := PublisherOptions{Topic: "events", DeadLetterTopic: "events.dlq", MaxRecordBytes: 2000}
	p := newPublisher(t, cfg, opts)
	huge := strings.Repeat("k", 100_000)
	b := pipeline.Batch{Events: []pipeline.Event{stringEvent(huge, 1, "v"), stringEvent("after", 1, "v")},
		Rejects: []pipeline.Reject{{Key: []byte(huge), Class: pipeline.RejectBigKey, Err: fmt.Errorf("too many elements in %q", huge)}}}
	if err := p.Publish(ctxT(t), b, nil); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if st := p.Stats(); st.Published != 1 || st.DeadLettered != 2 {
		t.Fatalf("stats = %+v, want 1 published, 2 dead-lettered", st)
	}
	for _, r := range consumeAll(t, cfg, "events.dlq", 2) {
		hdr := headers(r)
		if !strings.HasPrefix(huge, string(r.Key)) || len(r.Key) == 0 || hdr[HeaderKeySize] != strconv.Itoa(len(huge)) || recordBytes(r) > 2000 {
			t.Fatalf("dead letter: %d-byte key, %d bytes in all, headers %v", len(r.Key), recordBytes(r), hdr)
		}
	}
}

// The publisher's record batches could reach MaxRecordBytes + 48 KiB,
// over the broker's default max.message.bytes (1,048,588) with the
// default MaxRecordBytes of 1,000,000. Values that compression cannot
// shrink (random bytes: encrypted or compressed data, as base64) in
// events of about half a megabyte — or four pieces of a big key at the
// default chunk size — filled one batch past what the broker takes; the
// broker refused the batch whole, the publisher stopped, and a rerun
// published the same events into the same batch. A batch is now never
// larger than MaxRecordBytes.
func TestPublisherBatchesFitTheTopic(t *testing.T) {
	cfg := fakeClusterWith(t, map[string]string{"events": "", "events.dlq": ""})
	opts := PublisherOptions{Topic: "events", DeadLetterTopic: "events.dlq", Partitions: 3}
	cl := mustConnect(t, cfg, append(ProducerOpts(opts), kgo.ProducerLinger(200*time.Millisecond))...)
	p, err := NewPublisher(ctxT(t), cl, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Events of one key (one partition) whose records are 524,300 bytes
	// each: two make a batch just over the broker's limit.
	event := func(i, chars int) pipeline.Event {
		return stringEvent("big", uint64(i+1), base64.StdEncoding.EncodeToString(incompressible(chars*3/4)))
	}
	chars := 390_000
	for range 3 {
		e := event(0, chars)
		b, err := pipeline.Encode(nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		chars += (524_300 - len(b)) * 3 / 4
	}
	var evs []pipeline.Event
	for i := range 6 {
		evs = append(evs, event(i, chars))
	}
	if err := p.Publish(ctxT(t), pipeline.Batch{Events: evs}, nil); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if st := p.Stats(); st.Published != 6 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestFitDeadLetter(t *testing.T) {
	now := time.Unix(0, 0)
	orig := &kgo.Record{Topic: "events", Partition: 2, Offset: 77, Key: []byte("key"), Value: bytes.Repeat([]byte("v"), 5000),
		Headers: []kgo.RecordHeader{header(HeaderContentType, pipeline.ContentType)}}
	long := fmt.Errorf("%s", strings.Repeat("é", 5000))
	for name, c := range map[string]struct {
		r        *kgo.Record
		limit    int
		shrunk   bool
		keyBytes int
	}{
		"fits":           {sinkDeadLetter("dlq", orig, ClassDecode, fmt.Errorf("bad"), now), 10_000, false, 3},
		"value left out": {sinkDeadLetter("dlq", orig, ClassDecode, fmt.Errorf("bad"), now), 4000, true, 3},
		"long error":     {sinkDeadLetter("dlq", orig, ClassDecode, long, now), 4000, true, 3},
		"huge key":       {sourceDeadLetter("dlq", bytes.Repeat([]byte("k"), 50_000), 0, ClassInvalid, long, now), 4000, true, -1},
	} {
		t.Run(name, func(t *testing.T) {
			got, shrunk := fitDeadLetter(c.r, c.limit)
			if shrunk != c.shrunk || recordBytes(got) > c.limit {
				t.Fatalf("shrunk = %v, %d bytes for a limit of %d", shrunk, recordBytes(got), c.limit)
			}
			hdr := headers(got)
			if c.keyBytes >= 0 && len(got.Key) != c.keyBytes || c.keyBytes < 0 && (len(got.Key) == 0 || hdr[HeaderKeySize] != "50000") {
				t.Fatalf("key of %d bytes, headers %v", len(got.Key), hdr)
			}
			if !shrunk {
				return
			}
			for _, h := range []string{HeaderError, HeaderErrorClass, HeaderStage, HeaderTime} {
				if hdr[h] == "" {
					t.Fatalf("header %s lost: %v", h, hdr)
				}
			}
			if len(c.r.Value) > 0 && (len(got.Value) != 0 || hdr[HeaderValueLeftOut] == "" || hdr[HeaderOffset] != "77" || hdr[HeaderPartition] != "2") {
				t.Fatalf("value %d bytes, headers %v", len(got.Value), hdr)
			}
			if _, ok := hdr[HeaderContentType]; ok {
				t.Fatalf("the original's own headers are kept: %v", hdr)
			}
		})
	}
}

// reasonlessSink rejects every event without saying why: a bug of the
// sink, which must not crash the worker on that record at every restart.
type reasonlessSink struct{}

func (reasonlessSink) Apply(_ context.Context, events []pipeline.Event) ([]pipeline.Result, error) {
	out := make([]pipeline.Result, len(events))
	for i := range out {
		out[i] = pipeline.Result{Outcome: pipeline.Rejected}
	}
	return out, nil
}

// A Rejected result without an error made the worker's dead letter call
// Error on a nil error: the worker panicked on that record, and again
// after every restart.
func TestWorkerRejectWithoutAReason(t *testing.T) {
	cfg := fakeClusterWith(t, map[string]string{"events": "", "events.dlq": ""})
	produceRaw(t, cfg, rejectedEvent(t, "k", 1, 10))
	w := runToEnd(t, cfg, WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq"}, reasonlessSink{})
	if st := w.Stats(); st.Rejected != 1 || st.DeadLettered != 1 {
		t.Fatalf("stats = %+v", st)
	}
	if hdr := headers(consumeAll(t, cfg, "events.dlq", 1)[0]); !strings.Contains(hdr[HeaderError], "bug in the sink") {
		t.Fatalf("dead letter headers %v", hdr)
	}
}
