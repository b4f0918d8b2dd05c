package redis

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
)

// Stream reads a big key in pieces and calls emit with one chunk event per
// piece, all with the version read with the key's size. Memory stays
// bounded by one piece; emit may block (the publisher's backpressure).
//
// Hashes and sets are read with HSCAN/SSCAN, lists and sorted sets by
// rank with LRANGE/ZRANGE, strings by byte range with GETRANGE, streams
// by ID with XRANGE (their last ID and groups ride on the last piece).
// The pieces are not one atomic read: a write
// during the stream may or may not be in them. Live capture re-reads the
// key after any such write with a newer version, which supersedes the
// pieces; without live capture (a backfill alone) a big key changed while
// it is streamed may arrive in a mixed state.
//
// Every piece fits in one Kafka record (MaxRecordBytes). A key with one
// element too large for any record cannot be carried: all of its pieces
// land or none do. Stream then stops; if it already emitted pieces, it
// emits a delete at the smallest version after theirs, so the target
// never keeps part of the value as if it were the whole (any later change
// of the key still wins over that delete). It returns a
// *RejectedKeyError, whose reject goes to the dead-letter topic.
//
// A stream trimmed to no entries (XTRIM MAXLEN 0) before its first page
// still exists, with its last ID and groups: Stream reads it again, and
// emits what that read finds.
func (r *Reader) Stream(ctx context.Context, big BigKey, origin pipeline.Origin, pos []byte, emit func(pipeline.Event) error) error {
	return r.stream(ctx, big, origin, pos, emit, true)
}

// stream is Stream; reread says whether a stream found without entries is
// read again (once: its second read in pieces is the last).
func (r *Reader) stream(ctx context.Context, big BigKey, origin pipeline.Origin, pos []byte, emit func(pipeline.Event) error, reread bool) error {
	version := pipeline.ClockVersion(big.epoch, big.micros, origin != pipeline.OriginSnapshot)
	res := readResult{micros: big.micros, pttl: big.pttl}
	base := pipeline.Event{
		Key: []byte(big.Key), Op: pipeline.OpUpsert, Origin: origin, Version: version,
		ExpireAt: res.expireAt(), Source: r.source(pos, big.micros),
	}
	var held *pipeline.Event // a piece is emitted once the next is known, to mark the last
	emitted := 0
	var scratch []byte
	send := func(e *pipeline.Event) error {
		var err error
		if scratch, err = pipeline.Encode(scratch[:0], e); err != nil {
			return err
		}
		if size := len(e.Key) + len(scratch) + recordFraming; size > r.opts.MaxRecordBytes {
			return &RejectedKeyError{Reject: pipeline.Reject{Key: []byte(big.Key), Class: pipeline.RejectOversize, Size: big.Size,
				Err: fmt.Errorf("%s of %d elements: piece %d is %d bytes, over the %d-byte record limit, because one element is that large; the key is not copied (raise kafka.max_record_bytes and the topic's max.message.bytes, or exclude the key)",
					big.Type, big.Size, e.Chunk.Index, size, r.opts.MaxRecordBytes)}}
		}
		emitted++
		return emit(*e)
	}
	index, offset := 0, int64(0)
	piece := func(v pipeline.Value) error {
		e := base
		e.Value = v
		e.Chunk = &pipeline.Chunk{Index: index, Offset: offset}
		index++
		if v.Type == pipeline.TypeString {
			offset += int64(len(v.String)) // a string piece's offset counts bytes
		} else {
			offset += int64(v.Len())
		}
		if held != nil {
			if err := send(held); err != nil {
				return err
			}
		}
		held = &e
		return nil
	}
	b := &pieceBuilder{r: r, v: emptyPiece(big.Type), budget: r.opts.MaxRecordBytes - len(big.Key) - pieceOverhead}
	var err error
	switch big.Type {
	case pipeline.TypeHash, pipeline.TypeSet:
		err = r.streamScan(ctx, big, b, piece)
	case pipeline.TypeList, pipeline.TypeZSet:
		err = r.streamRange(ctx, big, b, piece)
	case pipeline.TypeString:
		err = r.streamString(ctx, big, piece)
	case pipeline.TypeStream:
		err = r.streamStream(ctx, big, b, piece)
	default:
		err = fmt.Errorf("key %q: type %s is not read in pieces", big.Key, big.Type)
	}
	if err == nil && big.Type == pipeline.TypeStream {
		switch {
		case held != nil:
			err = r.finishStream(ctx, big, held.Value.Stream)
			if err == nil {
				err = r.fitStreamMeta(held, piece)
			}
		case reread:
			return r.readAgain(ctx, big, origin, pos, emit)
		}
	}
	if errors.Is(err, errStreamGone) {
		// The stream went (or changed type) while it was read: what was
		// sent of it goes too; live capture reads its new state. With
		// nothing sent yet, what is there now is read at once.
		if emitted > 0 {
			del := pipeline.Event{Key: []byte(big.Key), Op: pipeline.OpDelete, Origin: origin, Version: version.Next(), Source: base.Source}
			return emit(del)
		}
		if reread {
			return r.readAgain(ctx, big, origin, pos, emit)
		}
		return nil
	}
	if err == nil && held != nil {
		held.Chunk.Last = true
		err = send(held)
	}
	var rej *RejectedKeyError
	if errors.As(err, &rej) && emitted > 0 {
		// Some pieces are on their way: take them back.
		del := pipeline.Event{Key: []byte(big.Key), Op: pipeline.OpDelete, Origin: origin, Version: version.Next(), Source: base.Source}
		if derr := emit(del); derr != nil {
			return derr
		}
	}
	if err != nil && rej == nil {
		return fmt.Errorf("read big key %q: %w", big.Key, err)
	}
	return err // nil, or the reject; a key emptied while read has no pieces: its delete comes through live capture
}

// RejectedKeyError says a key cannot be carried at all; Reject is what
// goes to the dead-letter topic.
type RejectedKeyError struct{ Reject pipeline.Reject }

func (e *RejectedKeyError) Error() string {
	return fmt.Sprintf("key %q is not copied: %v", e.Reject.Key, e.Reject.Err)
}

// pieceOverhead is what an event adds around a piece's elements: the
// envelope, the version, the source block, and the record's framing.
const pieceOverhead = 2048

// recordFraming is what Kafka adds to a record's key and value (the batch
// header, the record's own fields, the content-type header), which counts
// against the record limit as the publisher measures it.
const recordFraming = 512

// pieceBuilder accumulates elements until a piece is full.
type pieceBuilder struct {
	r      *Reader
	v      pipeline.Value
	bytes  int
	budget int // the most encoded bytes of elements in one record
}

// encoded estimates what one element adds to an encoded event: base64 of
// each part, quotes and separators, and a score's text.
func encoded(parts ...[]byte) int {
	n := 0
	for _, p := range parts {
		n += 4*((len(p)+2)/3) + 3
	}
	return n + 4
}

func (b *pieceBuilder) full() bool {
	return b.v.Len() >= b.r.opts.ChunkElements || b.bytes >= b.r.opts.ChunkBytes
}

// room makes room for an element of size encoded bytes: it flushes the
// piece first if the element would take it over the record budget.
func (b *pieceBuilder) room(size int, piece func(pipeline.Value) error, typ pipeline.Type) error {
	if b.v.Len() > 0 && b.bytes+size > b.budget {
		return b.flush(piece, typ)
	}
	return nil
}

func (b *pieceBuilder) flush(piece func(pipeline.Value) error, typ pipeline.Type) error {
	if b.v.Len() == 0 {
		return nil
	}
	v := b.v
	b.v, b.bytes = emptyPiece(typ), 0
	return piece(v)
}

// emptyPiece is a piece of type typ with no elements yet.
func emptyPiece(typ pipeline.Type) pipeline.Value {
	v := pipeline.Value{Type: typ}
	if typ == pipeline.TypeStream {
		v.Stream = &pipeline.Stream{EntriesAdded: -1}
	}
	return v
}

// add puts one element of size encoded bytes into the piece (appendTo
// appends it to b.v), flushing the piece before it when the element would
// not fit in the record and after it when the piece is full.
func (b *pieceBuilder) add(size int, appendTo func(), piece func(pipeline.Value) error, typ pipeline.Type) error {
	if err := b.room(size, piece, typ); err != nil {
		return err
	}
	appendTo()
	b.bytes += size
	if b.full() {
		return b.flush(piece, typ)
	}
	return nil
}

// streamScan reads a hash or a set with HSCAN/SSCAN.
func (r *Reader) streamScan(ctx context.Context, big BigKey, b *pieceBuilder, piece func(pipeline.Value) error) error {
	var cursor uint64
	for {
		var elems []string
		var next uint64
		err := retryRead(ctx, r.log, "scan big key", func() error {
			var err error
			if big.Type == pipeline.TypeHash {
				elems, next, err = r.cl.HScan(ctx, big.Key, cursor, "", 1000).Result()
			} else {
				elems, next, err = r.cl.SScan(ctx, big.Key, cursor, "", 1000).Result()
			}
			return err
		})
		if err != nil {
			return redisconn.Explain(r.conn, err)
		}
		if big.Type == pipeline.TypeHash {
			for i := 0; i+1 < len(elems); i += 2 {
				f, v := []byte(elems[i]), []byte(elems[i+1])
				if err := b.add(encoded(f, v), func() { b.v.Hash = append(b.v.Hash, pipeline.Field{Name: f, Value: v}) }, piece, big.Type); err != nil {
					return err
				}
			}
		} else {
			for _, m := range elems {
				mb := []byte(m)
				if err := b.add(encoded(mb), func() { b.v.Set = append(b.v.Set, mb) }, piece, big.Type); err != nil {
					return err
				}
			}
		}
		if next == 0 {
			return b.flush(piece, big.Type)
		}
		cursor = next
	}
}

// streamRange reads a list or a sorted set by rank, a page at a time.
func (r *Reader) streamRange(ctx context.Context, big BigKey, b *pieceBuilder, piece func(pipeline.Value) error) error {
	const page = 1000
	for start := int64(0); ; start += page {
		var list []string
		var zs []goredis.Z
		err := retryRead(ctx, r.log, "range big key", func() error {
			var err error
			if big.Type == pipeline.TypeList {
				list, err = r.cl.LRange(ctx, big.Key, start, start+page-1).Result()
			} else {
				zs, err = r.cl.ZRangeWithScores(ctx, big.Key, start, start+page-1).Result()
			}
			return err
		})
		if err != nil {
			return redisconn.Explain(r.conn, err)
		}
		n := len(list) + len(zs)
		for _, x := range list {
			xb := []byte(x)
			if err := b.add(encoded(xb), func() { b.v.List = append(b.v.List, xb) }, piece, big.Type); err != nil {
				return err
			}
		}
		for _, z := range zs {
			m, _ := z.Member.(string)
			sm := pipeline.ScoredMember{Member: []byte(m), Score: z.Score}
			if err := b.add(encoded(sm.Member)+24, func() { b.v.ZSet = append(b.v.ZSet, sm) }, piece, big.Type); err != nil {
				return err
			}
		}
		if n < page {
			return b.flush(piece, big.Type)
		}
	}
}

// streamString reads a long string with GETRANGE, ChunkBytes at a time;
// a piece's offset is its first byte's.
func (r *Reader) streamString(ctx context.Context, big BigKey, piece func(pipeline.Value) error) error {
	step := int64(r.opts.ChunkBytes)
	for start := int64(0); ; start += step {
		var part string
		err := retryRead(ctx, r.log, "range big string", func() error {
			var err error
			part, err = r.cl.GetRange(ctx, big.Key, start, start+step-1).Result()
			return err
		})
		if err != nil {
			return redisconn.Explain(r.conn, err)
		}
		if part == "" {
			return nil
		}
		if err := piece(pipeline.Value{Type: pipeline.TypeString, String: []byte(part)}); err != nil {
			return err
		}
		if int64(len(part)) < step {
			return nil
		}
	}
}

// streamStream reads a stream's entries by ID with XRANGE, a page at a
// time, each page starting at the last ID of the one before, whose entry
// it repeats and which is dropped (the exclusive "(" start needs Redis
// 6.2). (The raw reply, not go-redis' XMessage: a map loses the fields'
// order and an entry's repeated fields.)
func (r *Reader) streamStream(ctx context.Context, big BigKey, b *pieceBuilder, piece func(pipeline.Value) error) error {
	const page = 1000
	start, prev := "-", ""
	for {
		var raw []any
		err := retryRead(ctx, r.log, "range big stream", func() error {
			var err error
			raw, err = r.cl.Do(ctx, "XRANGE", big.Key, start, "+", "COUNT", page).Slice()
			return err
		})
		if err != nil {
			if isWrongType(err) {
				return errStreamGone
			}
			return redisconn.Explain(r.conn, err)
		}
		entries, err := streamEntries(raw)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.ID == prev {
				continue // the last entry of the page before
			}
			if err := b.add(streamEntrySize(e), func() { b.v.Stream.Entries = append(b.v.Stream.Entries, e) }, piece, big.Type); err != nil {
				return err
			}
		}
		if len(entries) < page {
			return b.flush(piece, big.Type)
		}
		start = entries[len(entries)-1].ID
		prev = start
	}
}

// streamEntrySize is what one entry adds to an encoded stream value:
// {"id":"…","fields":[["b64","b64"],…]} and a comma (pipeline's
// appendStream). The read script's streamEntries counts the same.
func streamEntrySize(e pipeline.StreamEntry) int {
	n := 21 + len(e.ID)
	for _, f := range e.Fields {
		n += base64.StdEncoding.EncodedLen(len(f.Name)) + base64.StdEncoding.EncodedLen(len(f.Value)) + 8
	}
	return n
}

// fitStreamMeta makes room for what finishStream put on the last piece
// (held), which was cut to the record's size before it was known: if the
// groups take the piece over the record limit, they and the last ID move
// to a piece of their own, without entries.
func (r *Reader) fitStreamMeta(held *pipeline.Event, piece func(pipeline.Value) error) error {
	last := *held
	last.Chunk = &pipeline.Chunk{Index: held.Chunk.Index, Offset: held.Chunk.Offset, Last: true}
	buf, err := pipeline.Encode(nil, &last)
	if err != nil {
		return err
	}
	if len(held.Key)+len(buf)+recordFraming <= r.opts.MaxRecordBytes {
		return nil
	}
	st := held.Value.Stream
	meta := emptyPiece(pipeline.TypeStream)
	meta.Stream.LastID, meta.Stream.MaxDeletedID, meta.Stream.EntriesAdded, meta.Stream.Groups = st.LastID, st.MaxDeletedID, st.EntriesAdded, st.Groups
	st.LastID, st.MaxDeletedID, st.EntriesAdded, st.Groups = "", "", -1, nil
	return piece(meta)
}

// readAgain reads a big stream again when its read in pieces sent nothing:
// it was deleted, retyped, or trimmed to nothing since it was found big.
// Trimmed, it still exists with its last ID and groups, and is small now:
// its event is emitted (a delete, for live capture, if it is gone; the
// new value if it is another key now; in pieces once more if it is big).
func (r *Reader) readAgain(ctx context.Context, big BigKey, origin pipeline.Origin, pos []byte, emit func(pipeline.Event) error) error {
	b, counts, err := r.Read(ctx, []string{big.Key}, origin, pos)
	if err != nil {
		return fmt.Errorf("read big key %q again, found without entries: %w", big.Key, err)
	}
	if len(b.Rejects) > 0 {
		return &RejectedKeyError{Reject: b.Rejects[0]}
	}
	for _, e := range b.Events {
		if err := emit(e); err != nil {
			return err
		}
	}
	if len(counts.Big) > 0 {
		return r.stream(ctx, counts.Big[0], origin, pos, emit, false)
	}
	return nil
}

// streamMetaScript reads a stream's last ID, counters and groups at once.
var streamMetaScript = goredis.NewScript(streamMetaLua + `
if redis.call('TYPE', KEYS[1])['ok'] ~= 'stream' then return false end
return streamMeta(KEYS[1])
`)

// errStreamGone says a stream was deleted, or replaced by another type,
// while it was read in pieces.
var errStreamGone = errors.New("the stream went while it was read")

// finishStream puts the stream's last ID, counters and groups, read after
// its entries, on its last piece. The last ID is never before the last
// entry read, nor entries-added below the entries sent, so the target
// accepts them whatever changed during the read.
func (r *Reader) finishStream(ctx context.Context, big BigKey, last *pipeline.Stream) error {
	var reply any
	err := retryRead(ctx, r.log, "read stream groups", func() error {
		var err error
		reply, err = streamMetaScript.Run(ctx, r.cl, []string{big.Key}).Result()
		if errors.Is(err, goredis.Nil) {
			return nil
		}
		return err
	})
	if err != nil {
		return redisconn.Explain(r.conn, err)
	}
	meta, ok := reply.([]any)
	if !ok {
		return errStreamGone
	}
	st, err := streamMeta(meta)
	if err != nil {
		return fmt.Errorf("key %q: %w", big.Key, err)
	}
	top := last.Entries[len(last.Entries)-1].ID
	if id, err := pipeline.ParseStreamID(st.LastID); err != nil || id.Less(mustStreamID(top)) {
		st.LastID = top
	}
	last.LastID, last.MaxDeletedID, last.EntriesAdded, last.Groups = st.LastID, st.MaxDeletedID, st.EntriesAdded, st.Groups
	return nil
}

// mustStreamID parses an ID Redis gave out.
func mustStreamID(s string) pipeline.StreamID {
	id, _ := pipeline.ParseStreamID(s)
	return id
}

// isWrongType reports a reply saying the key holds another type now.
func isWrongType(err error) bool { return strings.HasPrefix(err.Error(), "WRONGTYPE") }
