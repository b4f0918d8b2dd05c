package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

// These tests run the transport against kfake, franz-go's in-process
// Kafka; the end-to-end tests in test/ run it against a real broker.

func fakeCluster(t *testing.T, topics ...string) Config {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return Config{Brokers: c.ListenAddrs(), ClientID: t.Name()}
}

// newPublisher is a Publisher with opts on a producer connected to cfg,
// closed when the test ends.
func newPublisher(t *testing.T, cfg Config, opts PublisherOptions) *Publisher {
	t.Helper()
	p, err := NewPublisher(ctxT(t), mustConnect(t, cfg, ProducerOpts(opts)...), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func stringEvent(key string, micros uint64, value string) pipeline.Event {
	return pipeline.Event{
		Key: []byte(key), Op: pipeline.OpUpsert, Origin: pipeline.OriginSnapshot,
		Version: pipeline.ClockVersion(0, micros, false),
		Value:   pipeline.Value{Type: pipeline.TypeString, String: []byte(value)},
		Source:  pipeline.SourceInfo{Connector: "redis", Name: "t"},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func consumeAll(t *testing.T, cfg Config, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := Connect(ctxT(t), cfg, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < n {
		f := cl.PollFetches(ctxT(t))
		if err := f.Err0(); err != nil {
			t.Fatalf("consume %s: %v (have %d of %d)", topic, err, len(out), n)
		}
		out = append(out, f.Records()...)
	}
	return out
}

func TestPublisherDurableInOrderAndDeadLettersOversize(t *testing.T) {
	cfg := fakeCluster(t, "events", "events.dlq")
	opts := PublisherOptions{Topic: "events", DeadLetterTopic: "events.dlq", MaxRecordBytes: 2000}
	p := newPublisher(t, cfg, opts)

	var mu sync.Mutex
	var durable []int
	const batches = 50
	for b := range batches {
		var evs []pipeline.Event
		for i := range 20 {
			v := "small"
			if b == 7 && i == 3 {
				v = string(bytes.Repeat([]byte("x"), 5000)) // over the limit
			}
			evs = append(evs, stringEvent(fmt.Sprintf("k%d-%d", b, i), uint64(b*100+i), v))
		}
		if err := p.Publish(ctxT(t), pipeline.Batch{Events: evs}, func() {
			mu.Lock()
			durable = append(durable, b)
			mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(durable) != batches {
		t.Fatalf("onDurable called %d times, want %d", len(durable), batches)
	}
	for i, b := range durable {
		if i != b {
			t.Fatalf("onDurable out of order: %v", durable)
		}
	}
	st := p.Stats()
	if st.Published != batches*20-1 || st.DeadLettered != 1 {
		t.Fatalf("stats = %+v, want %d published and 1 dead-lettered", st, batches*20-1)
	}

	dlq := consumeAll(t, cfg, "events.dlq", 1)
	if string(dlq[0].Key) != "k7-3" || len(dlq[0].Value) != 0 {
		t.Fatalf("dead letter = key %q value %d bytes", dlq[0].Key, len(dlq[0].Value))
	}
	hdr := map[string]string{}
	for _, h := range dlq[0].Headers {
		hdr[h.Key] = string(h.Value)
	}
	if hdr[HeaderErrorClass] != pipeline.RejectOversize || hdr[HeaderStage] != "source" || hdr[HeaderError] == "" {
		t.Fatalf("dead-letter headers = %v", hdr)
	}
}

// memSink is a versioned in-memory target, the reference semantics every
// real sink must match.
type memSink struct {
	mu      sync.Mutex
	store   map[string]pipeline.Event
	failOn  map[string]bool // Apply returns an error when it sees these keys
	rejects map[string]bool // these keys are Rejected
	calls   int
}

func (s *memSink) Apply(ctx context.Context, events []pipeline.Event) ([]pipeline.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	out := make([]pipeline.Result, len(events))
	for i, e := range events {
		if s.failOn[string(e.Key)] {
			return nil, errors.New("target unavailable")
		}
		if s.rejects[string(e.Key)] {
			out[i] = pipeline.Result{Outcome: pipeline.Rejected, Err: fmt.Errorf("%w: too big", pipeline.ErrUnmappable)}
			continue
		}
		out[i] = applyVersioned(s.store, e)
	}
	return out, nil
}

// applyVersioned keeps e in store unless the key holds a version as new.
func applyVersioned(store map[string]pipeline.Event, e pipeline.Event) pipeline.Result {
	if cur, ok := store[string(e.Key)]; ok && !e.Version.Newer(cur.Version) {
		return pipeline.Result{Outcome: pipeline.SkippedOlder}
	}
	store[string(e.Key)] = e
	return pipeline.Result{Outcome: pipeline.Applied}
}

func runWorker(t *testing.T, cfg Config, opts WorkerOptions, sink pipeline.Sink) (*Worker, func() error) {
	t.Helper()
	cl, err := Connect(ctxT(t), cfg, WorkerOpts(opts)...)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorker(ctxT(t), cl, opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	return w, func() error {
		cancel()
		err := <-errc
		cl.Close()
		return err
	}
}

func TestWorkerCommitsOnlyAfterApplyAndDeadLetters(t *testing.T) {
	cfg := fakeCluster(t, "events", "events.dlq")
	pcl := mustConnect(t, cfg)
	var recs []*kgo.Record
	for i := range 30 {
		e := stringEvent(fmt.Sprintf("k%d", i), uint64(i+1), "v")
		b, err := pipeline.Encode(nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: "events", Key: e.Key, Value: b})
	}
	recs = append(recs, &kgo.Record{Topic: "events", Key: []byte("garbage"), Value: []byte("not an event")})
	if err := pcl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	opts := WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq"}

	// A sink that fails on every key commits nothing (the decode failure
	// is the last record of its partition).
	failing := &memSink{store: map[string]pipeline.Event{}, failOn: map[string]bool{}}
	for i := range 30 {
		failing.failOn[fmt.Sprintf("k%d", i)] = true
	}
	w1, stop1 := runWorker(t, cfg, opts, failing)
	deadline := time.Now().Add(10 * time.Second)
	for {
		failing.mu.Lock()
		calls := failing.calls
		failing.mu.Unlock()
		if calls > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("worker never called the sink")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := stop1(); err == nil || !strings.Contains(err.Error(), "target unavailable") {
		t.Fatalf("worker with a failing sink stopped with %v, want the sink's error", err)
	}
	if got := w1.Progress().Committed(); len(got) != 0 {
		t.Fatalf("a failed batch was committed: %v", got)
	}

	// A healthy worker in the same group applies everything; the decode
	// failure and the rejected event land in the dead-letter topic.
	sink := &memSink{store: map[string]pipeline.Event{}, rejects: map[string]bool{"k9": true}}
	ends, err := EndOffsets(ctxT(t), pcl, "events")
	if err != nil {
		t.Fatal(err)
	}
	w2 := runToEnd(t, cfg, opts, sink)
	if len(sink.store) != 29 {
		t.Fatalf("sink holds %d keys, want 29", len(sink.store))
	}
	st := w2.Stats()
	if st.Applied != 29 || st.Rejected != 1 || st.DecodeErrors != 1 || st.DeadLettered != 2 {
		t.Fatalf("stats = %+v", st)
	}
	committed, err := CommittedOffsets(ctxT(t), pcl, "g", "events")
	if err != nil {
		t.Fatal(err)
	}
	for p, end := range ends {
		if committed[p] != end {
			t.Fatalf("group committed %v, want %v", committed, ends)
		}
	}
	dlq := consumeAll(t, cfg, "events.dlq", 2)
	classes := map[string]bool{}
	for _, r := range dlq {
		for _, h := range r.Headers {
			if h.Key == HeaderErrorClass {
				classes[string(h.Value)] = true
			}
		}
	}
	if !classes[ClassDecode] || !classes[ClassUnmappable] {
		t.Fatalf("dead-letter classes = %v", classes)
	}

	// A third worker of the same group finds nothing left to do: a replay
	// of nothing, not of everything. Waiting a while and finding its sink
	// empty would prove nothing on a slow machine, where the worker may
	// not have fetched yet; so one marker is published per partition after
	// it started, and once it has committed every marker it has provably
	// read each partition from the group's offsets on: the markers, and
	// nothing committed before them, must be all it applied.
	sink3 := &memSink{store: map[string]pipeline.Event{}}
	w3, stop3 := runWorker(t, cfg, opts, sink3)
	markers := markerPerPartition(t, len(ends))
	var markerRecs []*kgo.Record
	for _, key := range markers {
		e := stringEvent(key, 1000, "marker")
		b, err := pipeline.Encode(nil, &e)
		if err != nil {
			t.Fatal(err)
		}
		markerRecs = append(markerRecs, &kgo.Record{Topic: "events", Key: e.Key, Value: b})
	}
	if err := pcl.ProduceSync(ctxT(t), markerRecs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ends3, err := EndOffsets(ctxT(t), pcl, "events")
	if err != nil {
		t.Fatal(err)
	}
	if err := w3.Progress().WaitFor(ctxT(t), ends3, nil); err != nil {
		t.Fatalf("third worker did not commit the markers: %v (committed %v, end %v)", err, w3.Progress().Committed(), ends3)
	}
	if err := stop3(); err != nil {
		t.Fatal(err)
	}
	sink3.mu.Lock()
	defer sink3.mu.Unlock()
	for _, key := range markers {
		if _, ok := sink3.store[key]; !ok {
			t.Fatalf("third worker committed past marker %q without applying it", key)
		}
	}
	if extra := len(sink3.store) - len(markers); extra != 0 {
		t.Fatalf("a restarted worker re-applied %d committed events", extra)
	}
}

// markerPerPartition returns one key for each of n partitions, chosen with
// the partitioner the publisher uses.
func markerPerPartition(t *testing.T, n int) []string {
	t.Helper()
	keys := make([]string, n)
	found := 0
	for i := 0; found < n && i < 10000; i++ {
		key := fmt.Sprintf("marker-%d", i)
		if p := pipeline.PartitionOf([]byte(key), int32(n)); keys[p] == "" {
			keys[p] = key
			found++
		}
	}
	if found != n {
		t.Fatalf("found marker keys for %d of %d partitions", found, n)
	}
	return keys
}

func TestConnectUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := Connect(ctx, Config{Brokers: []string{"127.0.0.1:1"}, DialTimeout: time.Second})
	if err == nil {
		t.Fatal("Connect to a closed port succeeded")
	}
	for _, want := range []string{"127.0.0.1:1", "check --kafka-brokers"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Fatalf("error %q does not mention %q", err, want)
		}
	}
}

// PartitionOf must send a key where Kafka's default partitioner does, and
// where the publisher does: a truncate event's sweep relies on it.
func TestPartitionOfMatchesKafka(t *testing.T) {
	kafkaDefault := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for i := range 5000 {
		key := []byte(fmt.Sprintf("k%d-%s", i, strings.Repeat("x", i%13)))
		for _, n := range []int{1, 3, 12, 64} {
			want := kafkaDefault.Partition(&kgo.Record{Key: key}, n)
			if got := int(pipeline.PartitionOf(key, int32(n))); got != want {
				t.Fatalf("PartitionOf(%q, %d) = %d, Kafka's partitioner says %d", key, n, got, want)
			}
		}
	}
}

// TestWorkerJoinsTheGroupOnlyWhenItRuns: a command that connects its
// worker and then fails before running it (replicate on a table whose
// stream is off) used to hang in Close for a minute on a busy broker: the
// client had started joining the group as soon as it was made, and Close
// waits for a join in flight. The worker's client now names its topic
// only when Run starts, so until then it is no group member at all.
func TestWorkerJoinsTheGroupOnlyWhenItRuns(t *testing.T) {
	cfg := fakeCluster(t, "events", "events.dlq")
	opts := WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq"}
	cl, err := Connect(ctxT(t), cfg, WorkerOpts(opts)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewWorker(ctxT(t), cl, opts, &memSink{store: map[string]pipeline.Event{}}); err != nil {
		t.Fatal(err)
	}
	if topics := cl.GetConsumeTopics(); len(topics) != 0 {
		t.Fatalf("a worker that has not run consumes %v: it would join the group", topics)
	}
	cl.Close() // no join in flight: returns at once

	w, stop := runWorker(t, cfg, opts, &memSink{store: map[string]pipeline.Event{}})
	defer stop()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		topics := w.cl.GetConsumeTopics()
		if len(topics) == 1 && topics[0] == "events" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a running worker consumes %v, want [events]", topics)
		}
	}
}
