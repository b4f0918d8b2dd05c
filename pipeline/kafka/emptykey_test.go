package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

// What franz-go does with a zero-length key: it produces it as a key of
// length 0, not as a null key, and a consumer gets it back as a non-nil
// empty slice; a nil key comes back nil. The publisher relies on it: a nil
// record key marks a truncate event, whose partition is set by hand, while
// the empty key is hashed like any other key.
func TestZeroLengthKeyIsNotANullKey(t *testing.T) {
	cfg := fakeCluster(t, "raw")
	cl := mustConnect(t, cfg)
	if err := cl.ProduceSync(ctxT(t),
		&kgo.Record{Topic: "raw", Partition: 0, Key: []byte{}, Value: []byte("empty")},
		&kgo.Record{Topic: "raw", Partition: 0, Key: nil, Value: []byte("null")},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for _, r := range consumeAll(t, cfg, "raw", 2) {
		got[string(r.Value)] = r.Key
	}
	if k := got["empty"]; k == nil || len(k) != 0 {
		t.Errorf("zero-length key consumed as %#v, want a non-nil empty slice", k)
	}
	if k := got["null"]; k != nil {
		t.Errorf("null key consumed as %#v, want nil", k)
	}
}

// Redis accepts SET "" v, and cutover used to refuse the empty key twice
// over: the publisher failed every later publish on it ("publish key "":
// invalid event: empty key"), so a backfill stopped at the same cursor on
// every rerun, and a worker dead-lettered such a record as undecodable.
// Now it travels as a zero-length record key on the partition its hash
// gives, and the worker applies it with the rest.
func TestEmptyKeyIsPublishedAndApplied(t *testing.T) {
	cfg := fakeCluster(t, "events", "events.dlq")
	opts := PublisherOptions{Topic: "events", DeadLetterTopic: "events.dlq"}
	p := newPublisher(t, cfg, opts)
	empty := stringEvent("", 1, "the empty key's value")
	nilKey := stringEvent("", 2, "nil is the empty key too")
	nilKey.Key = nil
	deleted := pipeline.Event{Key: []byte{}, Op: pipeline.OpDelete, Origin: pipeline.OriginLive, Version: pipeline.ClockVersion(0, 3, true)}
	batch := pipeline.Batch{Events: []pipeline.Event{stringEvent("a", 1, "x"), empty, nilKey, stringEvent("b", 1, "y"), deleted}}
	durable := make(chan struct{})
	if err := p.Publish(ctxT(t), batch, func() { close(durable) }); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	<-durable
	if st := p.Stats(); st.Published != 5 || st.DeadLettered != 0 {
		t.Fatalf("stats = %+v, want 5 published", st)
	}
	want := pipeline.PartitionOf([]byte{}, 3)
	for _, r := range consumeAll(t, cfg, "events", 5) {
		if len(r.Key) != 0 {
			continue
		}
		if r.Key == nil || r.Partition != want {
			t.Fatalf("empty key's record: key %#v on partition %d, want a zero-length key on partition %d", r.Key, r.Partition, want)
		}
	}

	sink := &memSink{store: map[string]pipeline.Event{}}
	w := runToEnd(t, cfg, WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq"}, sink)
	if st := w.Stats(); st.DeadLettered != 0 || st.DecodeErrors != 0 {
		t.Fatalf("worker stats = %+v: the empty key was dead-lettered", st)
	}
	if e, ok := sink.store[""]; !ok || e.Op != pipeline.OpDelete {
		t.Fatalf("sink holds %+v for the empty key, want its delete (the newest event)", e)
	}
	if len(sink.store) != 3 {
		t.Fatalf("sink holds %d keys, want a, b and the empty key", len(sink.store))
	}
}

// The worker's side of the empty key: a record of "key":"" used to fail
// to decode ("empty key") and was dead-lettered; it is applied now, and
// one record that cannot be decoded still only dead-letters itself.
func TestWorkerAppliesTheEmptyKey(t *testing.T) {
	cfg := fakeCluster(t, "events", "events.dlq")
	cl := mustConnect(t, cfg)
	v := pipeline.ClockVersion(0, 7, false).String()
	empty := `{"v":1,"op":"r","key":"","version":"` + v + `","origin":"snapshot","after":{"type":"string","string":"dg=="},"source":{"connector":"redis","name":"t","db":0}}`
	other := stringEvent("k", 7, "x")
	b, err := pipeline.Encode(nil, &other)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctxT(t),
		&kgo.Record{Topic: "events", Key: []byte{}, Value: []byte(empty)},
		&kgo.Record{Topic: "events", Key: []byte("bad"), Value: []byte(`{"v":1,"op":"u"}`)},
		&kgo.Record{Topic: "events", Key: other.Key, Value: b},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	sink := &memSink{store: map[string]pipeline.Event{}}
	w := runToEnd(t, cfg, WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq"}, sink)
	if st := w.Stats(); st.Applied != 2 || st.DecodeErrors != 1 || st.DeadLettered != 1 {
		t.Fatalf("stats = %+v, want the empty key and k applied, the bad record dead-lettered", st)
	}
	if e, ok := sink.store[""]; !ok || string(e.Value.String) != "v" {
		t.Fatalf("sink holds %+v for the empty key", e)
	}
}
