package kafka

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

// Partitions added to the topic while a source runs. The publisher hashed
// keys over the count franz-go currently knew, so after its next metadata
// refresh keys moved to other partitions, while Broadcast still sent its
// truncate copies by the count from startup: a copy no longer followed
// the re-reads of the keys it covers (its sweep could delete a key whose
// newer read was still queued on another partition), and the pieces of a
// big key could straddle two partitions (a later piece applied before the
// first is skipped, leaving the key incomplete for good). Now a publisher
// keeps every key on PartitionOf(key, its count) for its whole life and
// sends its truncate copies by the same count; a restarted one uses the
// new count for both.
func TestKeysKeepTheirPartitionWhenTheTopicGrows(t *testing.T) {
	cfg := fakeCluster(t, "events", "events.dlq") // 3 partitions
	opts := PublisherOptions{Topic: "events", DeadLetterTopic: "events.dlq"}
	cl := mustConnect(t, cfg, ProducerOpts(opts)...)
	// As cmd/cutover does: the count EnsureTopic reports at startup.
	start := func(cl *kgo.Client) *Publisher {
		t.Helper()
		st, err := EnsureTopic(ctxT(t), cl, TopicSpec{Name: "events"})
		if err != nil {
			t.Fatal(err)
		}
		o := opts
		o.Partitions = st.Partitions
		p, err := NewPublisher(ctxT(t), cl, o)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := start(cl)
	publish := func(p *Publisher, round int) {
		t.Helper()
		var evs []pipeline.Event
		for i := range 60 {
			e := stringEvent(fmt.Sprint("k", i), uint64(round*100+1), "v")
			e.Source.Name = fmt.Sprint(round)
			evs = append(evs, e)
		}
		if err := p.Publish(ctxT(t), pipeline.Batch{Events: evs}, nil); err != nil {
			t.Fatal(err)
		}
		truncate := pipeline.Event{Op: pipeline.OpTruncate, Origin: pipeline.OriginLive, Version: pipeline.ClockVersion(0, uint64(round*100), false),
			Scope: &pipeline.Scope{}, Source: pipeline.SourceInfo{Name: fmt.Sprint(round)}}
		if err := p.Broadcast(ctxT(t), truncate, nil); err != nil {
			t.Fatal(err)
		}
		if err := p.Flush(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	publish(p, 1)

	// The topic grows to 5 partitions, and the producer learns of it.
	if _, err := kadm.NewClient(cl).CreatePartitions(ctxT(t), 2, "events"); err != nil {
		t.Fatal(err)
	}
	cl.ForceMetadataRefresh()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if leader, _, err := cl.PartitionLeader("events", 4); err == nil && leader >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the producer never saw the new partitions")
		}
		time.Sleep(20 * time.Millisecond)
	}
	publish(p, 2)

	// A restarted publisher takes the topic as it is now.
	cl2 := mustConnect(t, cfg, ProducerOpts(opts)...)
	publish(start(cl2), 3)

	// Every truncate copy lies on the partition of the keys it covers, after
	// their events of the same round: each partition's sweep runs after
	// that partition's re-reads.
	recs := consumeAll(t, cfg, "events", 3*60+3+3+5)
	type seen struct {
		events    map[string]int32 // key → partition, this round
		truncates map[int32]*pipeline.Scope
	}
	rounds := map[int]*seen{}
	for _, r := range recs {
		e, err := pipeline.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		round, err := strconv.Atoi(e.Source.Name)
		if err != nil {
			t.Fatal(err)
		}
		s := rounds[round]
		if s == nil {
			s = &seen{events: map[string]int32{}, truncates: map[int32]*pipeline.Scope{}}
			rounds[round] = s
		}
		if e.Op == pipeline.OpTruncate {
			if r.Partition != e.Scope.Partition {
				t.Fatalf("round %d: truncate copy for partition %d is on partition %d", round, e.Scope.Partition, r.Partition)
			}
			s.truncates[r.Partition] = e.Scope
			continue
		}
		s.events[string(e.Key)] = r.Partition
	}
	for round, want := range map[int]int32{1: 3, 2: 3, 3: 5} {
		s := rounds[round]
		if s == nil || len(s.truncates) != int(want) {
			t.Fatalf("round %d: truncate copies on %d partitions, want %d", round, len(s.truncates), want)
		}
		for key, part := range s.events {
			sc := s.truncates[part]
			if sc == nil || !sc.Covers([]byte(key)) {
				t.Errorf("round %d: key %q is on partition %d, but the truncate copy there does not cover it (scope %+v)", round, key, part, sc)
			}
		}
	}
}
