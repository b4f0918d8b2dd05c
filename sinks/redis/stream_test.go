package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
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

	rd := redissrc.NewReader(c, redisconn.Conn{Addr: src.Addr}, redissrc.ReaderOptions{Name: "t", ChunkElements: 400})
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

	check := redissrc.NewReader(dst.Client, redisconn.Conn{Addr: dst.Addr}, redissrc.ReaderOptions{Name: "t", MaxElements: 1 << 20, ChunkElements: 1 << 20, ChunkBytes: 1 << 30})
	must(t, check.Prepare(ctx))
	whole := redissrc.NewReader(c, redisconn.Conn{Addr: src.Addr}, redissrc.ReaderOptions{Name: "t", MaxElements: 1 << 20, ChunkElements: 1 << 20, ChunkBytes: 1 << 30})
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

// streamState is everything of a stream a copy must keep, as text, read
// over RESP2 so that XINFO replies are flat arrays.
func streamState(ctx context.Context, t *testing.T, addr, key string) string {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2})
	defer c.Close()
	ty := c.Type(ctx, key).Val()
	if ty != "stream" {
		return "type " + ty
	}
	var b strings.Builder
	entries, err := c.Do(ctx, "XRANGE", key, "-", "+").Slice()
	must(t, err)
	fmt.Fprintf(&b, "%d entries %v\n", len(entries), entries)
	pick := func(r []any, names ...string) {
		m := map[string]any{}
		for i := 0; i+1 < len(r); i += 2 {
			m[fmt.Sprint(r[i])] = r[i+1]
		}
		for _, n := range names {
			fmt.Fprintf(&b, "%s=%v ", n, m[n])
		}
		b.WriteString("\n")
	}
	info, err := c.Do(ctx, "XINFO", "STREAM", key).Slice()
	must(t, err)
	pick(info, "length", "last-generated-id", "max-deleted-entry-id", "entries-added")
	groups, err := c.Do(ctx, "XINFO", "GROUPS", key).Slice()
	must(t, err)
	for _, g := range groups {
		pick(g.([]any), "name", "last-delivered-id", "entries-read")
	}
	fmt.Fprintf(&b, "ttl>0=%v", c.PTTL(ctx, key).Val() > 0)
	return b.String()
}

// readPieces reads keys from src as the snapshot does: whole, or in pieces
// for big ones; it returns the events in that order.
func readPieces(ctx context.Context, t *testing.T, src *stack.Redis, keys []string, opts redissrc.ReaderOptions) []pipeline.Event {
	t.Helper()
	rd := redissrc.NewReader(src.Client, redisconn.Conn{Addr: src.Addr}, opts)
	must(t, rd.Prepare(ctx))
	b, counts, err := rd.Read(ctx, keys, pipeline.OriginSnapshot, nil)
	must(t, err)
	for _, r := range b.Rejects {
		t.Errorf("source rejected %q: %v", r.Key, r.Err)
	}
	all := append([]pipeline.Event{}, b.Events...)
	for _, big := range counts.Big {
		must(t, rd.Stream(ctx, big, pipeline.OriginSnapshot, nil, func(e pipeline.Event) error {
			all = append(all, e)
			return nil
		}))
	}
	for i := range all {
		if err := all[i].Validate(); err != nil {
			t.Fatalf("event %d for %q does not validate: %v", i, all[i].Key, err)
		}
	}
	return all
}

// copyKeys reads keys from src (readPieces) and applies every event to s,
// each of which must apply; it returns the events.
func copyKeys(ctx context.Context, t *testing.T, src *stack.Redis, s *Sink, keys []string, opts redissrc.ReaderOptions) []pipeline.Event {
	t.Helper()
	all := readPieces(ctx, t, src, keys, opts)
	res, err := s.Apply(ctx, all)
	must(t, err)
	for i, r := range res {
		if r.Outcome != pipeline.Applied {
			t.Errorf("event %d for %q: %v (%v)", i, all[i].Key, r.Outcome, r.Err)
		}
	}
	return all
}

// xaddNumbered adds entries 1-0 … n-0 to stream key of c, entry i-0
// holding field "i" = i-1.
func xaddNumbered(ctx context.Context, t *testing.T, c *goredis.Client, key string, n int) {
	t.Helper()
	for i := range n {
		must(t, c.Do(ctx, "XADD", key, fmt.Sprintf("%d-0", i+1), "i", i).Err())
	}
}

func newStreamSink(ctx context.Context, t *testing.T, dst *stack.Redis) *Sink {
	t.Helper()
	s, err := New(dst.Client, Options{Addr: dst.Addr})
	must(t, err)
	must(t, s.Prepare(ctx))
	return s
}

// Edge states a Redis 7.0 source can hold arrive exactly, a replay changes
// nothing, and reconcile's Diff sees no difference.
//
// "lowered" and "lowered2" pin a bug: XSETID may lower a stream's last ID
// below its max-deleted-entry-id (Redis 7.0 accepts XSETID k 1-0 after
// XDEL k 5-0), but XSETID refuses a MAXDELETEDID past the ID it sets. The
// sink set all three in one XSETID under pcall, whose fallback (the last
// ID alone) dropped both counters: the target said max-deleted 0-0 and
// entries-added 0 where the source said 5-0 and 1, and reconcile reported
// the key for ever (a repair wrote the same thing again). The sink now
// sets the counters at the later of the two IDs, then lowers the last ID.
func TestStreamEdgeStatesRoundTrip(t *testing.T) {
	ctx := context.Background()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	c := src.Client
	do := func(args ...any) { t.Helper(); must(t, c.Do(ctx, args...).Err()) }

	// A group beyond the last ID, one with entries-read > entries-added,
	// one with entries-read unknown (created at an explicit ID), and group
	// names with odd bytes, the empty name and the sink's scratch name.
	do("XADD", "groups", "5-0", "a", "b")
	do("XADD", "groups", "6-0", "a", "b", "a", "b")
	do("XGROUP", "CREATE", "groups", "beyond", "99-0")
	do("XGROUP", "CREATE", "groups", "overread", "5-0", "ENTRIESREAD", "100")
	do("XGROUP", "CREATE", "groups", "unknown", "5-0")
	do("XGROUP", "CREATE", "groups", "", "0")
	do("XGROUP", "CREATE", "groups", "cutover:empty", "$")
	do("XGROUP", "CREATE", "groups", "\x00\xff\r\n \"'", "6-0")
	// Empty, made with MKSTREAM (last ID 0-0), with a group.
	do("XGROUP", "CREATE", "mk", "g", "$", "MKSTREAM")
	// Empty after XDEL, a group, and a TTL.
	do("XADD", "emptied", "7-1", "f", "v")
	do("XDEL", "emptied", "7-1")
	do("XGROUP", "CREATE", "emptied", "cutover:empty", "0")
	do("PEXPIRE", "emptied", "3600000")
	// Last ID lowered below max-deleted-entry-id.
	do("XADD", "lowered", "5-0", "a", "b")
	do("XDEL", "lowered", "5-0")
	do("XSETID", "lowered", "1-0")
	// The same, with an entry added after the lowering.
	do("XADD", "lowered2", "5-0", "a", "b")
	do("XDEL", "lowered2", "5-0")
	do("XSETID", "lowered2", "1-0")
	do("XADD", "lowered2", "2-0", "c", "d")
	// Extreme IDs.
	do("XADD", "extreme", "0-1", "a", "b")
	do("XADD", "extreme", "18446744073709551615-18446744073709551614", "a", "b")

	keys := []string{"groups", "mk", "emptied", "lowered", "lowered2", "extreme"}
	s := newStreamSink(ctx, t, dst)
	all := copyKeys(ctx, t, src, s, keys, redissrc.ReaderOptions{Name: "t"})
	for _, k := range keys {
		if want, got := streamState(ctx, t, src.Addr, k), streamState(ctx, t, dst.Addr, k); want != got {
			t.Errorf("%s differs\nsource: %s\ntarget: %s", k, want, got)
		}
	}
	// Replaying changes nothing.
	before := map[string]string{}
	for _, k := range keys {
		before[k] = streamState(ctx, t, dst.Addr, k)
	}
	res, err := s.Apply(ctx, all)
	must(t, err)
	for i, r := range res {
		if r.Outcome == pipeline.Applied {
			t.Errorf("replayed event %d applied again", i)
		}
	}
	for _, k := range keys {
		if got := streamState(ctx, t, dst.Addr, k); got != before[k] {
			t.Errorf("%s changed on replay", k)
		}
	}
	// And pipeline.Diff (what reconcile uses) sees the same.
	rs := redissrc.NewReader(c, redisconn.Conn{Addr: src.Addr}, redissrc.ReaderOptions{Name: "t"})
	rt := redissrc.NewReader(dst.Client, redisconn.Conn{Addr: dst.Addr}, redissrc.ReaderOptions{Name: "t"})
	must(t, rs.Prepare(ctx))
	must(t, rt.Prepare(ctx))
	want, _, err := rs.Read(ctx, keys, pipeline.OriginSnapshot, nil)
	must(t, err)
	got, _, err := rt.Read(ctx, keys, pipeline.OriginSnapshot, nil)
	must(t, err)
	for i := range want.Events {
		if d := pipeline.Diff(&want.Events[i].Value, &got.Events[i].Value); d != "" {
			t.Errorf("reconcile would report %s: %s", want.Events[i].Key, d)
		}
	}
}

// The round trip over RESP2 connections on both sides (go-redis defaults
// to RESP3, whose replies have other shapes).
func TestStreamRoundTripRESP2(t *testing.T) {
	ctx := context.Background()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	src.Client = goredis.NewClient(&goredis.Options{Addr: src.Addr, Protocol: 2})
	dst.Client = goredis.NewClient(&goredis.Options{Addr: dst.Addr, Protocol: 2})
	c := src.Client
	for i := range 1200 {
		must(t, c.Do(ctx, "XADD", "s", fmt.Sprintf("%d-0", i+1), "f", i, "f", "again").Err())
	}
	must(t, c.Do(ctx, "XGROUP", "CREATE", "s", "g", "10-0").Err())
	must(t, c.Do(ctx, "XADD", "small", "1-1", "x", "\x00").Err())
	must(t, c.Do(ctx, "XGROUP", "CREATE", "small", "g", "$").Err())
	s := newStreamSink(ctx, t, dst)
	copyKeys(ctx, t, src, s, []string{"s", "small"}, redissrc.ReaderOptions{Name: "t", ChunkElements: 500})
	for _, k := range []string{"s", "small"} {
		if want, got := streamState(ctx, t, src.Addr, k), streamState(ctx, t, dst.Addr, k); want != got {
			t.Errorf("%s differs\nsource: %.400s\ntarget: %.400s", k, want, got)
		}
	}
}

// An entry of exactly maxEntryFields fields passes through the apply
// script's unpack (Lua's stack limit is 8,000 values).
func TestStreamWidestEntry(t *testing.T) {
	ctx := context.Background()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	args := []any{"XADD", "wide", "1-0"}
	for i := range maxEntryFields {
		args = append(args, fmt.Sprintf("f%d", i), i)
	}
	must(t, src.Client.Do(ctx, args...).Err())
	s := newStreamSink(ctx, t, dst)
	copyKeys(ctx, t, src, s, []string{"wide"}, redissrc.ReaderOptions{Name: "t", MaxRecordBytes: 4 << 20})
	if want, got := streamState(ctx, t, src.Addr, "wide"), streamState(ctx, t, dst.Addr, "wide"); want != got {
		t.Errorf("wide differs")
	}
}

// A big stream deleted, or replaced by another type, while it is read in
// pieces: what was sent is taken back with a delete just after the
// pieces' version, and the target holds nothing of it.
func TestStreamGoneMidRead(t *testing.T) {
	for _, how := range []string{"deleted", "retyped"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			src, dst := stack.NewRedis(t), stack.NewRedis(t)
			c := src.Client
			xaddNumbered(ctx, t, c, "big", 2500)
			s := newStreamSink(ctx, t, dst)
			// An older full copy on the target.
			copyKeys(ctx, t, src, s, []string{"big"}, redissrc.ReaderOptions{Name: "t", ChunkElements: 400})
			rd := redissrc.NewReader(c, redisconn.Conn{Addr: src.Addr}, redissrc.ReaderOptions{Name: "t", ChunkElements: 400})
			must(t, rd.Prepare(ctx))
			_, counts, err := rd.Read(ctx, []string{"big"}, pipeline.OriginSnapshot, nil)
			must(t, err)
			var evs []pipeline.Event
			must(t, rd.Stream(ctx, counts.Big[0], pipeline.OriginSnapshot, nil, func(e pipeline.Event) error {
				if len(evs) == 0 {
					must(t, c.Del(ctx, "big").Err())
					if how == "retyped" {
						must(t, c.Set(ctx, "big", "now a string", 0).Err())
					}
				}
				evs = append(evs, e)
				return nil
			}))
			last := evs[len(evs)-1]
			if last.Op != pipeline.OpDelete || !last.Version.Newer(evs[0].Version) {
				t.Fatalf("last event %v at %v, want a delete after %v", last.Op, last.Version, evs[0].Version)
			}
			_, err = s.Apply(ctx, evs)
			must(t, err)
			if n := dst.Client.Exists(ctx, "big").Val(); n != 0 {
				t.Errorf("the target still holds part of the stream")
			}
		})
	}
}

// Old pieces replayed after a newer whole write, in any order, and after
// a delete, add nothing: no regression, no resurrection.
func TestStreamOldPiecesAfterNewerWrite(t *testing.T) {
	ctx := context.Background()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	c := src.Client
	xaddNumbered(ctx, t, c, "s", 1200)
	s := newStreamSink(ctx, t, dst)
	old := copyKeys(ctx, t, src, s, []string{"s"}, redissrc.ReaderOptions{Name: "t", ChunkElements: 500})
	must(t, c.Do(ctx, "XTRIM", "s", "MAXLEN", "3").Err())
	must(t, c.Do(ctx, "XGROUP", "CREATE", "s", "g", "$").Err())
	copyKeys(ctx, t, src, s, []string{"s"}, redissrc.ReaderOptions{Name: "t", ChunkElements: 500})
	want := streamState(ctx, t, src.Addr, "s")
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2}, {2}} {
		var evs []pipeline.Event
		for _, i := range order {
			evs = append(evs, old[i])
		}
		res, err := s.Apply(ctx, evs)
		must(t, err)
		for i, r := range res {
			if r.Outcome == pipeline.Applied {
				t.Errorf("old piece %d applied over the newer value", order[i])
			}
		}
		if got := streamState(ctx, t, dst.Addr, "s"); got != want {
			t.Errorf("after replaying old pieces %v the target differs:\n%s\nwant\n%s", order, got, want)
		}
	}
	// A delete, then the old pieces: no resurrection.
	must(t, c.Del(ctx, "s").Err())
	del := pipeline.Event{Key: []byte("s"), Op: pipeline.OpDelete, Origin: pipeline.OriginLive, Version: pipeline.ClockVersion(0, uint64(time.Now().UnixMicro()), true)}
	_, err := s.Apply(ctx, []pipeline.Event{del})
	must(t, err)
	_, err = s.Apply(ctx, old)
	must(t, err)
	if n := dst.Client.Exists(ctx, "s").Val(); n != 0 {
		t.Errorf("old pieces resurrected a deleted stream")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
