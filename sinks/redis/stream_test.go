package redis

import (
	"context"
	"fmt"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
	redissrc "github.com/cutover/cutover/sources/redis"
	"github.com/cutover/cutover/test/stack"
)

// A stream read whole or in pieces is rebuilt exactly on a Redis target:
// entries with their IDs, the last ID and counters, the groups; replayed
// pieces add nothing, and an empty stream (every entry deleted) exists.
func TestStreamRoundTrip(t *testing.T) {
	ctx := context.Background()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	c := src.Client
	for i := range 2500 {
		args := []any{"XADD", "big", fmt.Sprintf("%d-%d", 1000+i/2, i%2), "i", i}
		if i%100 == 0 {
			args = append(args, "i", "again", "\x00", "\xff")
		}
		must(t, c.Do(ctx, args...).Err())
	}
	must(t, c.XDel(ctx, "big", "1001-1").Err())
	must(t, c.XGroupCreate(ctx, "big", "g1", "0").Err())
	must(t, c.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "g1", Consumer: "c", Streams: []string{"big", ">"}, Count: 10}).Err())
	must(t, c.XGroupCreate(ctx, "big", "g2", "$").Err())
	must(t, c.XAdd(ctx, &goredis.XAddArgs{Stream: "small", ID: "7-7", Values: []any{"a", "b"}}).Err())
	must(t, c.XGroupCreate(ctx, "small", "g", "7-7").Err())
	must(t, c.XAdd(ctx, &goredis.XAddArgs{Stream: "empty", ID: "3-0", Values: []any{"a", "b"}}).Err())
	must(t, c.XDel(ctx, "empty", "3-0").Err())

	rd := redissrc.NewReader(c, redissrc.Conn{Addr: src.Addr}, redissrc.ReaderOptions{Name: "t", ChunkElements: 400})
	must(t, rd.Prepare(ctx))
	b, counts, err := rd.Read(ctx, []string{"big", "small", "empty"}, pipeline.OriginSnapshot, nil)
	must(t, err)
	if len(b.Events) != 2 || len(counts.Big) != 1 {
		t.Fatalf("read %d events and %d big keys, want the two small streams whole and the big one in pieces", len(b.Events), len(counts.Big))
	}
	var pieces []pipeline.Event
	must(t, rd.Stream(ctx, counts.Big[0], pipeline.OriginSnapshot, nil, func(e pipeline.Event) error {
		pieces = append(pieces, e)
		return nil
	}))
	if len(pieces) < 6 || !pieces[len(pieces)-1].Chunk.Last {
		t.Fatalf("%d pieces of a 2,499-entry stream read 400 at a time", len(pieces))
	}

	s, err := New(dst.Client, Options{Addr: dst.Addr})
	must(t, err)
	must(t, s.Prepare(ctx))
	all := append(append([]pipeline.Event{}, b.Events...), pieces...)
	res, err := s.Apply(ctx, all)
	must(t, err)
	for i, r := range res {
		if r.Outcome != pipeline.Applied {
			t.Fatalf("event %d: %v (%v)", i, r.Outcome, r.Err)
		}
	}
	// Replaying every event changes nothing.
	res, err = s.Apply(ctx, all)
	must(t, err)
	for i, r := range res {
		if r.Outcome == pipeline.Applied {
			t.Fatalf("replayed event %d applied again", i)
		}
	}

	check := redissrc.NewReader(dst.Client, redissrc.Conn{Addr: dst.Addr}, redissrc.ReaderOptions{Name: "t", MaxElements: 1 << 20, ChunkElements: 1 << 20, ChunkBytes: 1 << 30})
	must(t, check.Prepare(ctx))
	whole := redissrc.NewReader(c, redissrc.Conn{Addr: src.Addr}, redissrc.ReaderOptions{Name: "t", MaxElements: 1 << 20, ChunkElements: 1 << 20, ChunkBytes: 1 << 30})
	must(t, whole.Prepare(ctx))
	keys := []string{"big", "small", "empty"}
	want, _, err := whole.Read(ctx, keys, pipeline.OriginSnapshot, nil)
	must(t, err)
	got, _, err := check.Read(ctx, keys, pipeline.OriginSnapshot, nil)
	must(t, err)
	if len(got.Events) != 3 || len(want.Events) != 3 {
		t.Fatalf("read back %d of 3 streams (source %d)", len(got.Events), len(want.Events))
	}
	for i := range keys {
		if d := pipeline.Diff(&want.Events[i].Value, &got.Events[i].Value); d != "" {
			t.Errorf("%s: %s", keys[i], d)
		}
	}
	if st := want.Events[0].Value.Stream; st.EntriesAdded != 2500 || st.MaxDeletedID != "1001-1" || len(st.Groups) != 2 {
		t.Errorf("the source stream read as %+v", *st)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
