package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/cutover/cutover/pipeline"
)

// hasEvent reports whether the publisher got an event of op for item pk.
func hasEvent(p *fakePublisher, pk string, op pipeline.Op) bool {
	for _, e := range p.Events() {
		if e.Op == op && strings.Contains(string(e.Key), `"S":"`+pk+`"`) && e.Origin == pipeline.OriginLive {
			return true
		}
	}
	return false
}

// TestBackfillThenReplicateReadsChangesMadeBetween: a backfill took no
// stream position before its scan, so a later replicate found no stream
// checkpoint, started at LATEST, saw the scan done and did not heal:
// every change made between the two commands was lost (reproduced: 500
// items backfilled, 50 updated and 50 deleted, then replicate: 50
// different and 50 only in the target). A backfill of a table whose
// stream is on now takes the position, and replicate reads from it.
func TestBackfillThenReplicateReadsChangesMadeBetween(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.streams.addShard("s1", "", false)
		h.streams.put("s1", "a", false) // before the backfill: not needed, harmless
		if err := h.source(t, Mode{SnapshotOnly: true}).Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Between the commands.
		h.streams.put("s1", "a", false)
		h.streams.put("s1", "b", true)
		src := h.source(t, Mode{})
		if err := h.runFor(t, src, func() bool { return hasEvent(h.pub, "b", pipeline.OpDelete) && hasEvent(h.pub, "a", pipeline.OpUpsert) }); err != nil {
			t.Fatal(err)
		}
		if n := len(truncates(h.pub)); n != 0 {
			t.Errorf("%d truncates: the position the backfill took needs no heal", n)
		}
		if n := h.table.scanCount(); n != 1 {
			t.Errorf("the table was scanned %d times, want once (by the backfill)", n)
		}
	})
}

// TestReplicateAfterABackfillWithoutStreamHeals: when the backfill could
// take no position (the stream was off then), the changes made since are
// in no stream replicate can read: it heals.
func TestReplicateAfterABackfillWithoutStreamHeals(t *testing.T) {
	h := newHarness()
	h.def.StreamView, h.def.StreamARN = "", ""
	if err := h.source(t, Mode{SnapshotOnly: true}).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.def = fakeTableDef // the stream is turned on
	h.streams.addShard("s1", "", false)
	src := h.source(t, Mode{})
	if err := h.runFor(t, src, func() bool { return len(truncates(h.pub)) == 1 }); err != nil {
		t.Fatal(err)
	}
	if tr := truncates(h.pub)[0]; tr.Version.Epoch() != 1 {
		t.Errorf("the heal's truncate is of epoch %d, want 1", tr.Version.Epoch())
	}
	if st := h.state(t); st.Heal != nil || st.Epoch != "1" {
		t.Errorf("after the heal the checkpoint says %+v", st)
	}
}

// savePositions writes a stream checkpoint.
func (h *harness) savePositions(t *testing.T, pos streamPosition) {
	t.Helper()
	raw, err := json.Marshal(pos)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ck.Save(context.Background(), "p/dynamodb/T/stream", raw); err != nil {
		t.Fatal(err)
	}
}

// readByTheRunBefore gives the stream one shard, s1, with one change of
// item a, that a run before read: the saved position is after it.
func (h *harness) readByTheRunBefore(t *testing.T) {
	t.Helper()
	h.streams.addShard("s1", "", false)
	h.streams.put("s1", "a", false)
	h.savePositions(t, streamPosition{StreamARN: fakeTableDef.StreamARN, Updated: time.Now(),
		Shards: map[string]*shardState{"s1": {Seq: "100000000000000000001"}}})
}

// scanned marks the table's scan as finished (at epoch 0).
func (h *harness) scanned(t *testing.T) {
	t.Helper()
	raw, _ := json.Marshal(scanPosition{Segments: 1, Last: make([]json.RawMessage, 1), Done: []bool{true}, Finished: true})
	if err := h.ck.Save(context.Background(), "p/dynamodb/T/scan", raw); err != nil {
		t.Fatal(err)
	}
}

// TestInterruptedHealResumesAndSendsItsTruncate: a heal lived only in
// memory, and the trimmed shard's position was already saved as "from
// the trim horizon". A crash during the heal's scan left no trace of the
// gap: the next run resumed an ordinary scan, sent no truncate, and the
// items deleted during the gap stayed in the target for good. The gap is
// now recorded before the position is forgotten, and the heal resumes
// after a restart until its truncate is out.
func TestInterruptedHealResumesAndSendsItsTruncate(t *testing.T) {
	h := newHarness()
	h.streams.addShard("s1", "", false)
	for range 5 {
		h.streams.put("s1", "a", false)
	}
	h.streams.trimmed["s1"] = 3 // records 1..3 are gone; we had read up to 1
	h.savePositions(t, streamPosition{StreamARN: fakeTableDef.StreamARN, Updated: time.Now(),
		Shards: map[string]*shardState{"s1": {Seq: "100000000000000000001"}}})
	h.scanned(t)

	// Run 1 finds the gap and "crashes" in the heal's scan.
	fail := &failingTable{fakeTable: h.table}
	src, err := NewSource(fail, h.streams, h.def, ScanOptions{Name: "p", Segments: 1},
		StreamOptions{Name: "p", PollInterval: time.Millisecond, RefreshEvery: 10 * time.Millisecond, Settle: 100 * time.Millisecond}, Mode{}, h.pub, h.ck)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "heal") {
		t.Fatalf("run 1 ended with %v, want the heal's scan failure", err)
	}
	if st := h.state(t); st.Heal == nil {
		t.Fatalf("the gap is not in the checkpoint after the crash: %+v", st)
	}
	if len(truncates(h.pub)) != 0 {
		t.Fatal("a truncate went out before the heal's scan was done")
	}

	// Run 2 resumes the heal, in the epoch it started.
	if err := h.runFor(t, h.source(t, Mode{}), func() bool { return len(truncates(h.pub)) >= 1 && h.state(t).Heal == nil }); err != nil {
		t.Fatal(err)
	}
	if e := truncates(h.pub)[0].Version.Epoch(); e != 1 {
		t.Errorf("the resumed heal's truncate is of epoch %d, want 1 (the heal's own)", e)
	}
}

// failingTable fails every Scan.
type failingTable struct{ *fakeTable }

func (f *failingTable) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return nil, errors.New("the process dies here")
}

// TestVanishedShardIsAGap: a saved, unfinished shard that the stream no
// longer lists (it aged out while cutover was stopped) used to be
// dropped, its children started at their trim horizon, and nothing was
// healed. Its unread records are a gap.
func TestVanishedShardIsAGap(t *testing.T) {
	h := newHarness()
	h.streams.addShard("child", "old", false)
	h.savePositions(t, streamPosition{StreamARN: fakeTableDef.StreamARN, Updated: time.Now(),
		Shards: map[string]*shardState{"old": {Seq: "100000000000000000007"}}})
	h.scanned(t)
	if err := h.runFor(t, h.source(t, Mode{}), func() bool { return len(truncates(h.pub)) == 1 }); err != nil {
		t.Fatal(err)
	}
	if pos := h.streamPos(t); pos.Shards["old"] == nil || !pos.Shards["old"].Done {
		t.Errorf("the vanished shard is not done: %+v", pos.Shards["old"])
	}
}

// TestStalePositionsAreAGap: positions saved longer ago than the stream
// keeps records may point past trimmed records: a heal, from new
// positions.
func TestStalePositionsAreAGap(t *testing.T) {
	h := newHarness()
	h.streams.addShard("s1", "", false)
	h.savePositions(t, streamPosition{StreamARN: fakeTableDef.StreamARN, Updated: time.Now().Add(-25 * time.Hour),
		Shards: map[string]*shardState{"s1": {}}})
	h.scanned(t)
	if err := h.runFor(t, h.source(t, Mode{}), func() bool { return len(truncates(h.pub)) == 1 }); err != nil {
		t.Fatal(err)
	}
}

// TestTrimmedRecordsAreNotReadInALoop: GetRecords answering
// TrimmedDataAccessException was retried at once with the same iterator,
// forever. It is a gap, and the shard goes on from its trim horizon.
func TestTrimmedRecordsAreNotReadInALoop(t *testing.T) {
	h := newHarness()
	h.streams.addShard("s1", "", false)
	h.streams.put("s1", "a", false)
	st := NewStream(h.streams, h.table, h.def, StreamOptions{Name: "p", Epoch: pipeline.NewEpoch(0), PollInterval: time.Millisecond,
		OnGap: func(context.Context, string) error { return nil }}, h.pub, h.ck)
	if _, err := st.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.streams.mu.Lock()
	h.streams.trimmed["s1"] = 5 // everything after LATEST's position is gone too
	h.streams.mu.Unlock()
	h.streams.put("s1", "b", false)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = st.Run(ctx)
	if st.Stats().Gaps == 0 {
		t.Error("no gap counted")
	}
	h.streams.mu.Lock()
	defer h.streams.mu.Unlock()
	if n := h.streams.calls["s1"]; n > 1000 {
		t.Errorf("GetRecords was called %d times in 300ms: retried without a pause", n)
	}
}

// TestRecordWithoutUsableImageIsReadAgain: DynamoDB Local writes an empty
// map in a stream image as {}, which names no attribute type (the SDK
// gives nil), and a record may come without a new image at all. The first
// used to become an empty list in the target, the second stopped live
// capture for good ("has no new image"). The item is read again instead:
// its current state, or a delete when it is gone.
func TestRecordWithoutUsableImageIsReadAgain(t *testing.T) {
	h := newHarness()
	h.table.items = map[string]string{"a": "now"}
	st := NewStream(h.streams, h.table, h.def, StreamOptions{Name: "p", Epoch: pipeline.NewEpoch(0)}, h.pub, h.ck)
	key := func(pk string) map[string]streamtypes.AttributeValue {
		return map[string]streamtypes.AttributeValue{"pk": &streamtypes.AttributeValueMemberS{Value: pk}}
	}
	recs := []streamtypes.Record{
		{EventName: streamtypes.OperationTypeModify, Dynamodb: &streamtypes.StreamRecord{SequenceNumber: aws.String("100000000000000000001"), Keys: key("a"),
			NewImage: map[string]streamtypes.AttributeValue{"pk": key("a")["pk"], "empty": nil}}},
		{EventName: streamtypes.OperationTypeInsert, Dynamodb: &streamtypes.StreamRecord{SequenceNumber: aws.String("100000000000000000002"), Keys: key("gone")}},
	}
	b, _, err := st.events(context.Background(), "s1", recs, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 2 || b.Events[0].Op != pipeline.OpUpsert || b.Events[0].Value.Item["v"].S != "now" || b.Events[1].Op != pipeline.OpDelete {
		t.Fatalf("events %+v: want a's state read from the table, and a delete of the gone item", b.Events)
	}
	if st.rereads.Load() != 2 {
		t.Errorf("%d re-reads, want 2", st.rereads.Load())
	}
}

// TestStreamReenabledWhileRunningIsAGap: a stream disabled and enabled
// again while replicate ran was not noticed until the next restart: the
// running process kept reading the old, closed stream and every change
// after it was lost (the workflow checker's "stream off and on" fault).
// It is now a gap, healed, and the new stream is followed.
func TestStreamReenabledWhileRunningIsAGap(t *testing.T) {
	h := newHarness()
	h.streams.addShard("s1", "", false)
	src := h.source(t, Mode{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	waitFor(t, func() bool { return h.table.scanCount() == 1 })

	// Off and on: a new stream with a new shard.
	h.followsNewStream(t, cancel, done)
}

// followsNewStream gives the table a new stream, then checks that the
// running source heals (one truncate), reads the new stream and saves its
// positions.
func (h *harness) followsNewStream(t *testing.T, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	h.streams.mu.Lock()
	h.streams.shards = nil
	h.streams.mu.Unlock()
	h.streams.addShard("n1", "", false)
	h.table.mu.Lock()
	h.table.arn = "arn:stream/2"
	h.table.mu.Unlock()
	waitFor(t, func() bool { return len(truncates(h.pub)) == 1 })
	h.streams.put("n1", "c", false)
	waitFor(t, func() bool { return hasEvent(h.pub, "c", pipeline.OpUpsert) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if pos := h.streamPos(t); pos.StreamARN != "arn:stream/2" {
		t.Errorf("the positions are of %s, want the new stream's", pos.StreamARN)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("the condition did not hold within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOldTrimHorizonPositionIsAGap: a shard's position "from the trim
// horizon" (taken by a backfill, or before any record was read) used to
// count as good for ever while the checkpoint kept being saved: a shard
// that could not be read for a day was then opened at a trim horizon past
// records already trimmed, silently. Each such position now carries when
// it was taken.
func TestOldTrimHorizonPositionIsAGap(t *testing.T) {
	h := newHarness()
	h.streams.addShard("s1", "", false)
	h.savePositions(t, streamPosition{StreamARN: fakeTableDef.StreamARN, Updated: time.Now(),
		Shards: map[string]*shardState{"s1": {Since: time.Now().Add(-25 * time.Hour)}}})
	h.scanned(t)
	if err := h.runFor(t, h.source(t, Mode{}), func() bool { return len(truncates(h.pub)) == 1 }); err != nil {
		t.Fatal(err)
	}
}

// TestReplicateStartedWhileStreamOffWaitsForIt: the workflow checker
// turned a table's stream off and on while a replicate was starting
// (seed 1795767739413967548); the replicate saw the stream off, refused
// the table as if the user had never enabled it, and exited 1. For a
// pipeline that captured the stream before, a stream off is a gap, as it
// is while replicate runs: wait for it, follow the new stream and heal.
func TestReplicateStartedWhileStreamOffWaitsForIt(t *testing.T) {
	h := newHarness()
	h.streams.addShard("s1", "", false)
	if err := h.runFor(t, h.source(t, Mode{}), func() bool { return h.table.scanCount() == 1 }); err != nil {
		t.Fatal(err)
	}

	// Stopped; the stream goes off; replicate starts again meanwhile.
	h.table.mu.Lock()
	h.table.arn = ""
	h.table.mu.Unlock()
	h.def.StreamARN, h.def.StreamView = "", ""
	src := h.source(t, Mode{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("replicate stopped while the stream was off: %v", err)
	case <-time.After(100 * time.Millisecond): // ten looks at the table
	}

	// On again: a new stream, with a change in it.
	h.followsNewStream(t, cancel, done)
}

// TestFirstReplicateOfTableWithoutStreamIsRefused: a pipeline that never
// read the table's stream is refused with the command that enables it.
func TestFirstReplicateOfTableWithoutStreamIsRefused(t *testing.T) {
	h := newHarness()
	h.table.arn = ""
	h.def.StreamARN, h.def.StreamView = "", ""
	err := h.source(t, Mode{}).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "DynamoDB Streams is off on table T") {
		t.Fatalf("got %v, want the table refused with the fix", err)
	}
}

// TestStoppedWhileWaitingForTheStream: SIGTERM while waiting is a clean
// stop.
func TestStoppedWhileWaitingForTheStream(t *testing.T) {
	h := newHarness()
	h.streams.addShard("s1", "", false)
	if err := h.runFor(t, h.source(t, Mode{}), func() bool { return h.table.scanCount() == 1 }); err != nil {
		t.Fatal(err)
	}
	h.table.arn = ""
	h.def.StreamARN, h.def.StreamView = "", ""
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.source(t, Mode{}).Run(ctx); err != nil {
		t.Fatalf("stopped while waiting for the stream: %v, want nil", err)
	}
}

// TestReplicateAfterBackfillReadsNothingOlderThanTheScan: the workflow
// checker (seed 1795768696025143239) saw keys move backwards when a
// replicate followed a backfill: the backfill had saved its shards as
// "from the trim horizon", so replicate read the whole history of the open
// shard again — every change made before the backfill, stamped newer than
// the backfill's rows — and put old values over the newer ones the scan
// had copied. A backfill now follows the stream during its scan and
// leaves positions at the shard's end; the records before them are
// skipped, those after them are read.
func TestReplicateAfterBackfillReadsNothingOlderThanTheScan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.streams.addShard("s1", "", false)
		h.streams.age = -time.Hour
		h.streams.put("s1", "old", false) // an hour before the backfill
		h.streams.age = 0
		if err := h.source(t, Mode{SnapshotOnly: true}).Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if pos := h.streamPos(t); pos.Shards["s1"] == nil || pos.Shards["s1"].From.IsZero() {
			t.Fatalf("the backfill left no position at the shard's end: %+v", pos.Shards["s1"])
		}
		h.streams.put("s1", "new", false) // between the commands
		src := h.source(t, Mode{})
		if err := h.runFor(t, src, func() bool { return hasEvent(h.pub, "new", pipeline.OpUpsert) }); err != nil {
			t.Fatal(err)
		}
		if hasEvent(h.pub, "old", pipeline.OpUpsert) {
			t.Error("replicate published a change made before the backfill's scan: it would move the key back")
		}
		if n := len(truncates(h.pub)); n != 0 {
			t.Errorf("%d truncates: the backfill's positions need no heal", n)
		}
	})
}

// TestBackfillCarriesChangesMadeWhileItRuns: the backfill follows the
// stream while it scans; a change made then is published by the backfill
// and the position saved is after it.
func TestBackfillCarriesChangesMadeWhileItRuns(t *testing.T) {
	h := newHarness()
	h.streams.addShard("s1", "", false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.source(t, Mode{SnapshotOnly: true}).Run(ctx) }()
	waitFor(t, func() bool { return h.table.scanCount() == 1 })
	h.streams.put("s1", "during", false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !hasEvent(h.pub, "during", pipeline.OpUpsert) {
		t.Error("a change made during the backfill's scan was not published")
	}
	if pos := h.streamPos(t); pos.Shards["s1"] == nil || pos.Shards["s1"].Seq == "" {
		t.Errorf("the position is not after the change read: %+v", pos.Shards["s1"])
	}
}

// TestRestartScanDoesNotRaceTheStreamBacklog: replicate was stopped,
// the application updated an item twice, then `replicate --restart` ran
// (the workflow checker's seed 1795818152458459662). The stream resumed
// its saved positions and read the two records while the fresh scan ran
// at a new epoch; read after the epoch moved, they carried it too, with
// a sequence number above the rows' 1: the scan's row (the second
// update's state) reached the target first and the first update's record
// then put an older state over it, until the second record came. The
// target went backwards. The stream's backlog is now handed over before
// the scan starts its epoch, so the rows outrank it.
func TestRestartScanDoesNotRaceTheStreamBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.readByTheRunBefore(t)
		h.scanned(t)
		// While replicate was stopped: two updates of a; the table holds
		// the second.
		h.streams.put("s1", "a", false)
		h.streams.put("s1", "a", false)
		h.table.items = map[string]string{"a": "100000000000000000003", "b": "1"}
		h.streams.delay = 100 * time.Millisecond // the stream reads slower than the scan

		src := h.source(t, Mode{Restart: true})
		rowOut := func() bool {
			for _, e := range h.pub.Events() {
				if e.Origin == pipeline.OriginSnapshot && strings.Contains(string(e.Key), `"S":"a"`) {
					return hasEvent(h.pub, "a", pipeline.OpUpsert) && h.streamPos(t).Shards["s1"].Seq == "100000000000000000003"
				}
			}
			return false
		}
		if err := h.runFor(t, src, rowOut); err != nil {
			t.Fatal(err)
		}
		// Apply a's events in the order they were published, as a sink
		// does: newer versions only. The state must never go back.
		var held pipeline.Version
		var states []string
		for _, e := range h.pub.Events() {
			if !strings.Contains(string(e.Key), `"S":"a"`) || (held != nil && !e.Version.Newer(held)) {
				continue
			}
			held = e.Version
			states = append(states, e.Value.Item["v"].S)
		}
		for i := 1; i < len(states); i++ {
			if states[i] < states[i-1] {
				t.Fatalf("item a went back from %s to %s (states applied in order: %v)", states[i-1], states[i], states)
			}
		}
		if last := states[len(states)-1]; last != "100000000000000000003" {
			t.Errorf("item a ends at %s, want the table's state", last)
		}
	})
}
