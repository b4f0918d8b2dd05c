package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/stack"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// readBig reads keys with opts and streams the big ones; it returns every
// event, and fails the test on a reject.
func readBig(ctx context.Context, t *testing.T, rd *Reader, keys []string) (whole, pieces []pipeline.Event) {
	t.Helper()
	b, counts, err := rd.Read(ctx, keys, pipeline.OriginSnapshot, nil)
	must(t, err)
	for _, r := range b.Rejects {
		t.Fatalf("rejected %q: %v", r.Key, r.Err)
	}
	for _, big := range counts.Big {
		must(t, rd.Stream(ctx, big, pipeline.OriginSnapshot, nil, func(e pipeline.Event) error {
			pieces = append(pieces, e)
			return nil
		}))
	}
	return b.Events, pieces
}

// checkRecords fails the test for an event over the default record limit
// (as the publisher measures it, about).
func checkRecords(t *testing.T, evs []pipeline.Event) {
	t.Helper()
	for i := range evs {
		buf, err := pipeline.Encode(nil, &evs[i])
		must(t, err)
		if size := len(evs[i].Key) + len(buf) + recordFraming; size > 1_000_000 {
			t.Errorf("event %d of %q is %d bytes, over the 1,000,000-byte record limit: the publisher dead-letters it as oversize", i, evs[i].Key, size)
		}
	}
}

// A stream was read whole when it had few entries (XLEN, not fields) and
// when its MEMORY USAGE was under ChunkBytes; but a stream's listpacks
// hold field names once per node and IDs as deltas, while its event
// repeats every field name and ID, base64'd: about five times the memory.
// A typical event log of 8,000 entries of three named fields (243 KB in
// memory) became a 1.2 MB event, and a stream of 100 entries of 1,000
// fields (under the 128 elements that skipped the memory estimate) a 4 MB
// one: both dead-lettered as oversize on every write, never copied. (A
// hash of 100 fields of 40 KB skipped the estimate too.) The read script
// now measures a stream's entries as it reads them, and takes MEMORY
// USAGE for every other collection.
func TestStreamReadInPiecesByEventSize(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	c := src.Client
	for start := 0; start < 8000; start += 1000 {
		pipe := c.Pipeline()
		for i := start; i < start+1000; i++ {
			pipe.Do(ctx, "XADD", "events", "*", "customer_identifier", i%100, "event_type_name", "view", "source_application", "web")
		}
		_, err := pipe.Exec(ctx)
		must(t, err)
	}
	for i := range 100 {
		args := []any{"XADD", "wide", fmt.Sprintf("%d-0", i+1)}
		for j := range 1000 {
			args = append(args, fmt.Sprintf("field%05d", j), fmt.Sprintf("value%05d", j))
		}
		must(t, c.Do(ctx, args...).Err())
	}
	for i := range 100 {
		must(t, c.HSet(ctx, "fat", fmt.Sprintf("f%d", i), strings.Repeat("v", 40_000)).Err())
	}
	rd := NewReader(c, redisconn.Conn{Addr: src.Addr}, ReaderOptions{Name: "t"})
	must(t, rd.Prepare(ctx))
	keys := []string{"events", "wide", "fat"}
	whole, pieces := readBig(ctx, t, rd, keys)
	for _, e := range whole {
		t.Errorf("%q was read whole", e.Key)
	}
	checkRecords(t, append(whole, pieces...))
	entries := map[string]int{}
	for _, e := range pieces {
		entries[string(e.Key)] += e.Value.Len()
	}
	if entries["events"] != 8000 || entries["wide"] != 100 || entries["fat"] != 100 {
		t.Errorf("pieces hold %v elements, want all of them", entries)
	}
}

// The read script's measure of a stream's entries (Lua) is the source's
// piece measure (streamEntrySize): a stream whose entries take exactly
// ChunkBytes is read whole, one byte less and it is read in pieces. Its
// entries span several of the script's XRANGE pages, and none is repeated.
func TestStreamWholeReadMeasureMatchesPieces(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	c := src.Client
	total := 0
	for i := range 700 {
		e := pipeline.StreamEntry{ID: fmt.Sprintf("%d-%d", 1_700_000_000_000+i/3, i%3)}
		for j := range i%4 + 1 {
			e.Fields = append(e.Fields, pipeline.Field{Name: []byte(strings.Repeat("n", j)), Value: []byte(strings.Repeat("v", i%7))})
		}
		args := []any{"XADD", "s", e.ID}
		for _, f := range e.Fields {
			args = append(args, f.Name, f.Value)
		}
		must(t, c.Do(ctx, args...).Err())
		total += streamEntrySize(e)
	}
	for _, tc := range []struct {
		budget int
		whole  bool
	}{{total, true}, {total - 1, false}} {
		rd := NewReader(c, redisconn.Conn{Addr: src.Addr}, ReaderOptions{Name: "t", ChunkBytes: tc.budget})
		must(t, rd.Prepare(ctx))
		b, counts, err := rd.Read(ctx, []string{"s"}, pipeline.OriginSnapshot, nil)
		must(t, err)
		if whole, big := len(b.Events) == 1, len(counts.Big) == 1; whole != tc.whole || big == tc.whole {
			t.Fatalf("ChunkBytes %d of %d: %d events, %d big keys; want whole %v", tc.budget, total, len(b.Events), len(counts.Big), tc.whole)
		}
		if tc.whole {
			ids := map[string]bool{}
			for _, e := range b.Events[0].Value.Stream.Entries {
				if ids[e.ID] {
					t.Errorf("entry %s read twice", e.ID)
				}
				ids[e.ID] = true
			}
			if len(ids) != 700 {
				t.Errorf("read %d of 700 entries", len(ids))
			}
		}
	}
}

// streamEntrySize is what an entry adds to the encoded event, exactly:
// encoded() used to underestimate an entry (the ID's quotes and field
// names, the braces), so pieces could grow past what was budgeted.
func TestStreamEntrySizeMatchesCodec(t *testing.T) {
	st := &pipeline.Stream{LastID: "99-0", EntriesAdded: -1}
	e := pipeline.Event{Key: []byte("k"), Op: pipeline.OpUpsert, Origin: pipeline.OriginSnapshot, Version: pipeline.ClockVersion(0, 1, false),
		Value: pipeline.Value{Type: pipeline.TypeStream, Stream: st}}
	prev, err := pipeline.Encode(nil, &e)
	must(t, err)
	for i := range 40 {
		entry := pipeline.StreamEntry{ID: fmt.Sprintf("%d-%d", i+1, i*i*i)}
		for j := range i%5 + 1 {
			entry.Fields = append(entry.Fields, pipeline.Field{Name: make([]byte, j), Value: []byte(strings.Repeat("\xff", i))})
		}
		st.Entries = append(st.Entries, entry)
		buf, err := pipeline.Encode(nil, &e)
		must(t, err)
		want := len(buf) - len(prev)
		if i == 0 {
			want++ // the comma before the next entry, counted with each
		}
		if got := streamEntrySize(entry); got != want {
			t.Errorf("entry %d (%s, %d fields): size %d, the codec adds %d", i, entry.ID, len(entry.Fields), got, want)
		}
		prev = buf
	}
}

// A big stream trimmed to no entries (XTRIM MAXLEN 0) between the read
// that found it big and its first XRANGE page: Stream emitted nothing, as
// for a collection emptied while read, whose delete comes through live
// capture. But an empty stream is not deleted: it still exists with its
// last ID and groups, and a backfill alone left the target without it (or
// with an older copy). Stream now reads such a stream again and emits
// what it finds: the empty stream, for live capture the delete of one
// gone, or the key's new value if it changed type.
func TestStreamTrimmedToEmptyBeforeFirstPage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		origin pipeline.Origin
		change func(ctx context.Context, c *goredis.Client) error
		check  func(t *testing.T, evs []pipeline.Event)
	}{
		{"trimmed", pipeline.OriginSnapshot, func(ctx context.Context, c *goredis.Client) error {
			return c.Do(ctx, "XTRIM", "s", "MAXLEN", "0").Err()
		}, func(t *testing.T, evs []pipeline.Event) {
			if len(evs) != 1 || evs[0].Chunk != nil || evs[0].Value.Stream == nil {
				t.Fatalf("%d events, want the stream whole", len(evs))
			}
			st := evs[0].Value.Stream
			if len(st.Entries) != 0 || st.LastID != "1200-0" || len(st.Groups) != 1 || string(st.Groups[0].Name) != "g" {
				t.Errorf("read %d entries, last ID %s, groups %v; want none, 1200-0, g", len(st.Entries), st.LastID, st.Groups)
			}
		}},
		{"deleted, live", pipeline.OriginLive, func(ctx context.Context, c *goredis.Client) error {
			return c.Del(ctx, "s").Err()
		}, func(t *testing.T, evs []pipeline.Event) {
			if len(evs) != 1 || evs[0].Op != pipeline.OpDelete {
				t.Fatalf("%d events, want a delete", len(evs))
			}
		}},
		{"retyped", pipeline.OriginSnapshot, func(ctx context.Context, c *goredis.Client) error {
			return c.Set(ctx, "s", "a string now", 0).Err()
		}, func(t *testing.T, evs []pipeline.Event) {
			if len(evs) != 1 || evs[0].Value.Type != pipeline.TypeString {
				t.Fatalf("%d events, want the string", len(evs))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			src := stack.NewRedis(t)
			c := src.Client
			for i := range 1200 {
				must(t, c.Do(ctx, "XADD", "s", fmt.Sprintf("%d-0", i+1), "i", i).Err())
			}
			must(t, c.Do(ctx, "XGROUP", "CREATE", "s", "g", "0").Err())
			rd := NewReader(c, redisconn.Conn{Addr: src.Addr}, ReaderOptions{Name: "t", ChunkElements: 500})
			must(t, rd.Prepare(ctx))
			_, counts, err := rd.Read(ctx, []string{"s"}, tc.origin, nil)
			must(t, err)
			must(t, tc.change(ctx, c))
			var evs []pipeline.Event
			must(t, rd.Stream(ctx, counts.Big[0], tc.origin, nil, func(e pipeline.Event) error {
				evs = append(evs, e)
				return nil
			}))
			for i := range evs {
				if err := evs[i].Validate(); err != nil {
					t.Errorf("event %d: %v", i, err)
				}
			}
			tc.check(t, evs)
		})
	}
}

// A big stream was paged with XRANGE's exclusive start "(" + ID, which
// Redis only knows from 6.2: on a 5.0 or 6.0 source it failed with "ERR
// Invalid stream ID", retried as transient for two minutes, then the read
// failed. Pages now start at the last ID read, inclusive, and drop that
// entry. The server's slow log (every command, with its arguments) shows
// no "(" start, and the pieces hold every entry once.
func TestStreamPagesWithoutExclusiveRange(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	c := src.Client
	for start := 0; start < 3500; start += 500 {
		pipe := c.Pipeline()
		for i := start; i < start+500; i++ {
			pipe.Do(ctx, "XADD", "s", fmt.Sprintf("%d-%d", 1+i/2, i%2), "i", i)
		}
		_, err := pipe.Exec(ctx)
		must(t, err)
	}
	must(t, c.ConfigSet(ctx, "slowlog-max-len", "100000").Err())
	must(t, c.ConfigSet(ctx, "slowlog-log-slower-than", "0").Err())
	must(t, c.Do(ctx, "SLOWLOG", "RESET").Err())
	rd := NewReader(c, redisconn.Conn{Addr: src.Addr}, ReaderOptions{Name: "t", ChunkElements: 700})
	must(t, rd.Prepare(ctx))
	_, pieces := readBig(ctx, t, rd, []string{"s"})
	log, err := c.SlowLogGet(ctx, -1).Result()
	must(t, err)
	ranges := 0
	for _, l := range log {
		if len(l.Args) > 2 && strings.EqualFold(l.Args[0], "XRANGE") {
			ranges++
			if strings.HasPrefix(l.Args[2], "(") {
				t.Errorf("XRANGE with an exclusive start, which Redis < 6.2 refuses: %v", l.Args)
			}
		}
	}
	if ranges < 4 {
		t.Errorf("%d XRANGE pages in the slow log, want at least 4", ranges)
	}
	var got []string
	for _, p := range pieces {
		for _, e := range p.Value.Stream.Entries {
			got = append(got, e.ID)
		}
	}
	if len(got) != 3500 {
		t.Fatalf("pieces hold %d entries, want 3,500", len(got))
	}
	for i, id := range got {
		if want := fmt.Sprintf("%d-%d", 1+i/2, i%2); id != want {
			t.Fatalf("entry %d is %s, want %s", i, id, want)
		}
	}
}
