package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/pipeline"
	redissrc "github.com/cutover/cutover/sources/redis"
	"github.com/cutover/cutover/test/stack"
)

// Stream events the apply script could not write used to pass
// Event.Validate, and the script failed after its DEL: Redis does not roll
// a script back, so the target lost the value it held. An entry ID 0-0
// (XADD refuses it) left no key at all; a whole stream without a last ID
// (sent as 0-0, which XSETID refuses) left the new entry under the old
// version; a group named twice failed with BUSYGROUP, which the sink took
// for the transient BUSY and retried for ever, each retry deleting and
// rewriting the key while the partition stalled. Validate now refuses all
// three, and the sink checks them before it runs the script: rejected
// (dead-lettered) at once, the target untouched.
func TestStreamInvalidEventLeavesTargetUntouched(t *testing.T) {
	ctx := context.Background()
	dst := stack.NewRedis(t)
	s := newStreamSink(ctx, t, dst)
	ab := []pipeline.Field{{Name: []byte("a"), Value: []byte("b")}}
	old := pipeline.Event{Key: []byte("k"), Op: pipeline.OpUpsert, Origin: pipeline.OriginLive,
		Version: pipeline.ClockVersion(0, 1000, true),
		Value: pipeline.Value{Type: pipeline.TypeStream, Stream: &pipeline.Stream{
			Entries: []pipeline.StreamEntry{{ID: "3-0", Fields: ab}},
			LastID:  "3-0", MaxDeletedID: "0-0", EntriesAdded: 1}}}
	// valid: what Value.Validate alone cannot refuse (it does not know
	// whether a stream is whole or a piece): the sink's to refuse.
	cases := []struct {
		name  string
		st    *pipeline.Stream
		chunk *pipeline.Chunk
		valid bool
	}{
		{"entry ID 0-0", &pipeline.Stream{Entries: []pipeline.StreamEntry{{ID: "0-0", Fields: ab}}, LastID: "4-0", EntriesAdded: -1}, nil, false},
		{"whole without last ID", &pipeline.Stream{Entries: []pipeline.StreamEntry{{ID: "4-0", Fields: ab}}, EntriesAdded: -1}, nil, true},
		{"last piece without last ID", &pipeline.Stream{Entries: []pipeline.StreamEntry{{ID: "4-0", Fields: ab}}, EntriesAdded: -1}, &pipeline.Chunk{Index: 0, Last: true}, true},
		{"a group twice", &pipeline.Stream{Entries: []pipeline.StreamEntry{{ID: "4-0", Fields: ab}}, LastID: "4-0", EntriesAdded: -1,
			Groups: []pipeline.StreamGroup{{Name: []byte("g"), LastDeliveredID: "0-0", EntriesRead: -1}, {Name: []byte("g"), LastDeliveredID: "4-0", EntriesRead: -1}}}, nil, false},
		{"ID not canonical", &pipeline.Stream{Entries: []pipeline.StreamEntry{{ID: "04-0", Fields: ab}}, LastID: "4-0", EntriesAdded: -1}, nil, false},
		{"groups without last ID", &pipeline.Stream{Entries: []pipeline.StreamEntry{{ID: "4-0", Fields: ab}}, EntriesAdded: -1,
			Groups: []pipeline.StreamGroup{{Name: []byte("g"), LastDeliveredID: "0-0", EntriesRead: -1}}}, &pipeline.Chunk{Index: 0}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			must(t, dst.Client.FlushAll(ctx).Err())
			res, err := s.Apply(ctx, []pipeline.Event{old})
			must(t, err)
			if res[0].Outcome != pipeline.Applied {
				t.Fatalf("old value: %v %v", res[0].Outcome, res[0].Err)
			}
			before := streamState(ctx, t, dst.Addr, "k")
			bad := old
			bad.Version = pipeline.ClockVersion(0, 2000, true)
			bad.Value = pipeline.Value{Type: pipeline.TypeStream, Stream: c.st}
			bad.Chunk = c.chunk
			if err := bad.Validate(); !c.valid && !errors.Is(err, pipeline.ErrInvalidEvent) {
				t.Errorf("Validate = %v, want ErrInvalidEvent", err)
			}
			// Straight to the sink, as if Validate had let it through.
			actx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			res, err = s.Apply(actx, []pipeline.Event{bad})
			if err != nil {
				t.Fatalf("Apply did not return within 20 s (%v): an error taken for a transient one is retried for ever", err)
			}
			if res[0].Outcome != pipeline.Rejected || !errors.Is(res[0].Err, pipeline.ErrInvalidEvent) {
				t.Errorf("outcome %v (%v), want rejected as an invalid event", res[0].Outcome, res[0].Err)
			}
			if after := streamState(ctx, t, dst.Addr, "k"); after != before {
				t.Errorf("an event the sink could not write changed the target:\nbefore: %s\nafter:  %s", before, after)
			}
		})
	}
}

// isTransient matched the error code by prefix, so "BUSY" (a script
// running too long: it passes) also matched BUSYGROUP and BUSYKEY, which
// never pass: an event meeting one was retried for ever. The code is now
// the reply's first word, compared whole.
func TestIsTransientComparesTheWholeErrorCode(t *testing.T) {
	for msg, want := range map[string]bool{
		"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.": true,
		"LOADING Redis is loading the dataset in memory":                                         true,
		"OOM command not allowed when used memory > 'maxmemory'.":                                true,
		"BUSYGROUP Consumer Group name already exists script: abc, on @user_script:39.":          false,
		"BUSYKEY Target key name already exists.":                                                false,
		"ERR The ID specified in XADD must be greater than 0-0":                                  false,
		"OOMING is no code": false,
	} {
		if got := isTransient(replyError(msg)); got != want {
			t.Errorf("isTransient(%q) = %v, want %v", msg, got, want)
		}
	}
}

// An application on the target that makes its consumer group itself (the
// usual XGROUP CREATE s g $ MKSTREAM, ignoring BUSYGROUP) while a big
// stream's pieces are being applied. The last piece's XGROUP CREATE failed
// with BUSYGROUP, which isTransient took for BUSY: the sink retried the
// round trip, and on the retry every piece found XLEN past its offset and
// returned 0. Both pieces were reported skipped-older (no error, no dead
// letter), and the target kept the application's group position instead
// of the source's and lacked the source's later group ("x-audit"). The
// last piece now makes the groups the source's (as a whole write's DEL
// would), and BUSYGROUP is not transient.
func TestStreamGroupMadeOnTargetBetweenPieces(t *testing.T) {
	ctx := context.Background()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	c := src.Client
	xaddNumbered(ctx, t, c, "jobs", 1200)
	must(t, c.Do(ctx, "XGROUP", "CREATE", "jobs", "workers", "0").Err())
	must(t, c.Do(ctx, "XGROUP", "CREATE", "jobs", "x-audit", "$").Err())
	must(t, c.Do(ctx, "PEXPIRE", "jobs", "3600000").Err())
	pieces := readPieces(ctx, t, src, []string{"jobs"}, redissrc.ReaderOptions{Name: "t", ChunkElements: 500})
	if len(pieces) != 3 {
		t.Fatalf("%d pieces of 1,200 entries read 500 at a time", len(pieces))
	}
	s := newStreamSink(ctx, t, dst)
	res, err := s.Apply(ctx, pieces[:1])
	must(t, err)
	if res[0].Outcome != pipeline.Applied {
		t.Fatalf("first piece: %v", res[0].Outcome)
	}
	// The application on the target, between two pieces: its own group,
	// and one the source does not have.
	must(t, dst.Client.Do(ctx, "XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM").Err())
	must(t, dst.Client.Do(ctx, "XGROUP", "CREATE", "jobs", "app-only", "$").Err())
	actx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err = s.Apply(actx, pieces[1:])
	if err != nil {
		t.Fatalf("Apply of the remaining pieces did not return in 15 s: %v", err)
	}
	for i, r := range res {
		if r.Outcome != pipeline.Applied {
			t.Errorf("piece %d: %v %v", i+1, r.Outcome, r.Err)
		}
	}
	if want, got := streamState(ctx, t, src.Addr, "jobs"), streamState(ctx, t, dst.Addr, "jobs"); got != want {
		t.Errorf("the target differs from the source:\nsource: … %s\ntarget: … %s",
			want[strings.LastIndex(want, "]]")+2:], got[strings.LastIndex(got, "]]")+2:])
	}
}

// A big stream with one entry of more than maxEntryFields fields in a later
// piece: the sink rejected that piece as unmappable, the pieces after it
// found XLEN short of their offset and were skipped, and the target kept
// the first piece alone (500 of 1,200 entries, no groups, the last ID of
// entry 500) stamped with the read's version, as if it were the stream.
// The source keeps "all of a key's pieces land or none" for a piece too
// big for a record; the sink now does for a piece it rejects: it deletes
// the key just after the pieces' version.
func TestStreamRejectedLaterPieceTakesBackEarlierOnes(t *testing.T) {
	ctx := context.Background()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	c := src.Client
	for i := range 1200 {
		args := []any{"XADD", "s", fmt.Sprintf("%d-0", i+1), "i", i}
		if i == 700 {
			for j := range maxEntryFields + 1 {
				args = append(args, fmt.Sprintf("f%d", j), j)
			}
		}
		must(t, c.Do(ctx, args...).Err())
	}
	must(t, c.Do(ctx, "XGROUP", "CREATE", "s", "g", "0").Err())
	pieces := readPieces(ctx, t, src, []string{"s"}, redissrc.ReaderOptions{Name: "t", ChunkElements: 500})
	s := newStreamSink(ctx, t, dst)
	res, err := s.Apply(ctx, pieces)
	must(t, err)
	if res[0].Outcome != pipeline.Applied || res[1].Outcome != pipeline.Rejected || !errors.Is(res[1].Err, pipeline.ErrUnmappable) {
		t.Fatalf("first piece %v, second %v (%v): want applied, then rejected as unmappable", res[0].Outcome, res[1].Outcome, res[1].Err)
	}
	if !strings.Contains(res[1].Err.Error(), "taken back") {
		t.Errorf("the reject does not say the earlier pieces were taken back: %v", res[1].Err)
	}
	if n := dst.Client.Exists(ctx, "s").Val(); n != 0 {
		t.Errorf("the target holds %d of the stream's 1,200 entries under the read's version: part of the value as if it were the whole", dst.Client.XLen(ctx, "s").Val())
	}
	// A replay changes nothing, and a later read of the key wins.
	res, err = s.Apply(ctx, pieces)
	must(t, err)
	for i, r := range res {
		if r.Outcome == pipeline.Applied {
			t.Errorf("replayed piece %d applied", i)
		}
	}
	must(t, c.Del(ctx, "s").Err())
	must(t, c.Do(ctx, "XADD", "s", "1-0", "a", "b").Err())
	copyKeys(ctx, t, src, s, []string{"s"}, redissrc.ReaderOptions{Name: "t"})
	if want, got := streamState(ctx, t, src.Addr, "s"), streamState(ctx, t, dst.Addr, "s"); got != want {
		t.Errorf("a later read did not win over the take-back:\n%s\nwant\n%s", got, want)
	}
}

// The source cut a big stream's pieces to the record size before the
// last piece's groups were known, and then put them on it: a stream with
// many (or long-named) groups made a last piece over the record limit,
// rejected as oversize, so the stream was not copied. The groups and last
// ID now move to a piece of their own, without entries, when they do not
// fit, and the target is rebuilt from it.
func TestStreamGroupsOverflowingTheLastPiece(t *testing.T) {
	ctx := context.Background()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	c := src.Client
	const maxRecord = 20_000
	payload := strings.Repeat("p", 100)
	for start := 0; start < 2000; start += 500 {
		pipe := c.Pipeline()
		for i := start; i < start+500; i++ {
			pipe.Do(ctx, "XADD", "s", fmt.Sprintf("%d-0", i+1), "f", payload)
		}
		_, err := pipe.Exec(ctx)
		must(t, err)
	}
	for g := range 80 {
		must(t, c.Do(ctx, "XGROUP", "CREATE", "s", fmt.Sprintf("%03d-%s", g, strings.Repeat("g", 100)), "0").Err())
	}
	opts := redissrc.ReaderOptions{Name: "t", MaxRecordBytes: maxRecord, ChunkBytes: maxRecord, ChunkElements: 10_000}
	pieces := readPieces(ctx, t, src, []string{"s"}, opts)
	last := pieces[len(pieces)-1]
	if !last.Chunk.Last || last.Value.Len() != 0 || len(last.Value.Stream.Groups) != 80 {
		t.Errorf("last piece: %d entries, %d groups; want the groups on a piece of their own", last.Value.Len(), len(last.Value.Stream.Groups))
	}
	for i := range pieces {
		buf, err := pipeline.Encode(nil, &pieces[i])
		must(t, err)
		if len(buf) > maxRecord {
			t.Errorf("piece %d is %d bytes, over the %d-byte record", i, len(buf), maxRecord)
		}
	}
	s := newStreamSink(ctx, t, dst)
	res, err := s.Apply(ctx, pieces)
	must(t, err)
	for i, r := range res {
		if r.Outcome != pipeline.Applied {
			t.Errorf("piece %d: %v %v", i, r.Outcome, r.Err)
		}
	}
	if want, got := streamState(ctx, t, src.Addr, "s"), streamState(ctx, t, dst.Addr, "s"); got != want {
		t.Errorf("the target differs from the source")
	}
}
