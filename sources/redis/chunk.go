package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
)

// Stream reads a big key in pieces and calls emit with one chunk event per
// piece, all with the version read with the key's size. Memory stays
// bounded by one piece; emit may block (the publisher's backpressure).
//
// Hashes and sets are read with HSCAN/SSCAN, lists and sorted sets by
// rank with LRANGE/ZRANGE. The pieces are not one atomic read: a write
// during the stream may or may not be in them. Live capture re-reads the
// key after any such write with a newer version, which supersedes the
// pieces; without live capture (a backfill alone) a big key changed while
// it is streamed may arrive in a mixed state.
func (r *Reader) Stream(ctx context.Context, big BigKey, origin pipeline.Origin, pos []byte, emit func(pipeline.Event) error) error {
	version := pipeline.ClockVersion(r.opts.Epoch.Load(), big.micros, origin != pipeline.OriginSnapshot)
	res := readResult{micros: big.micros, pttl: big.pttl}
	base := pipeline.Event{
		Key: []byte(big.Key), Op: pipeline.OpUpsert, Origin: origin, Version: version,
		ExpireAt: res.expireAt(), Source: r.source(pos, big.micros),
	}
	var held *pipeline.Event // a piece is emitted once the next is known, to mark the last
	index, offset := 0, int64(0)
	piece := func(v pipeline.Value) error {
		e := base
		e.Value = v
		e.Chunk = &pipeline.Chunk{Index: index, Offset: offset}
		index++
		offset += int64(v.Len())
		if held != nil {
			if err := emit(*held); err != nil {
				return err
			}
		}
		held = &e
		return nil
	}
	var err error
	switch big.Type {
	case pipeline.TypeHash, pipeline.TypeSet:
		err = r.streamScan(ctx, big, piece)
	case pipeline.TypeList, pipeline.TypeZSet:
		err = r.streamRange(ctx, big, piece)
	default:
		err = fmt.Errorf("key %q: type %s is not read in pieces", big.Key, big.Type)
	}
	if err != nil {
		return fmt.Errorf("read big key %q: %w", big.Key, err)
	}
	if held == nil {
		return nil // emptied while we read it: its delete comes through live capture
	}
	held.Chunk.Last = true
	return emit(*held)
}

// pieceBuilder accumulates elements until a piece is full.
type pieceBuilder struct {
	r     *Reader
	v     pipeline.Value
	bytes int
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

func (b *pieceBuilder) flush(piece func(pipeline.Value) error, typ pipeline.Type) error {
	if b.v.Len() == 0 {
		return nil
	}
	v := b.v
	b.v, b.bytes = pipeline.Value{Type: typ}, 0
	return piece(v)
}

// streamScan reads a hash or a set with HSCAN/SSCAN.
func (r *Reader) streamScan(ctx context.Context, big BigKey, piece func(pipeline.Value) error) error {
	b := &pieceBuilder{r: r, v: pipeline.Value{Type: big.Type}}
	var cursor uint64
	for {
		var elems []string
		var next uint64
		err := retry(ctx, r.log, "scan big key", func() error {
			var err error
			if big.Type == pipeline.TypeHash {
				elems, next, err = r.cl.HScan(ctx, big.Key, cursor, "", 1000).Result()
			} else {
				elems, next, err = r.cl.SScan(ctx, big.Key, cursor, "", 1000).Result()
			}
			return err
		})
		if err != nil {
			return Explain(r.conn, err)
		}
		if big.Type == pipeline.TypeHash {
			for i := 0; i+1 < len(elems); i += 2 {
				f, v := []byte(elems[i]), []byte(elems[i+1])
				b.v.Hash = append(b.v.Hash, pipeline.Field{Name: f, Value: v})
				b.bytes += encoded(f, v)
				if b.full() {
					if err := b.flush(piece, big.Type); err != nil {
						return err
					}
				}
			}
		} else {
			for _, m := range elems {
				b.v.Set = append(b.v.Set, []byte(m))
				b.bytes += encoded([]byte(m))
				if b.full() {
					if err := b.flush(piece, big.Type); err != nil {
						return err
					}
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
func (r *Reader) streamRange(ctx context.Context, big BigKey, piece func(pipeline.Value) error) error {
	b := &pieceBuilder{r: r, v: pipeline.Value{Type: big.Type}}
	const page = 1000
	for start := int64(0); ; start += page {
		var list []string
		var zs []goredis.Z
		err := retry(ctx, r.log, "range big key", func() error {
			var err error
			if big.Type == pipeline.TypeList {
				list, err = r.cl.LRange(ctx, big.Key, start, start+page-1).Result()
			} else {
				zs, err = r.cl.ZRangeWithScores(ctx, big.Key, start, start+page-1).Result()
			}
			return err
		})
		if err != nil {
			return Explain(r.conn, err)
		}
		n := len(list) + len(zs)
		for _, x := range list {
			b.v.List = append(b.v.List, []byte(x))
			b.bytes += encoded([]byte(x))
			if b.full() {
				if err := b.flush(piece, big.Type); err != nil {
					return err
				}
			}
		}
		for _, z := range zs {
			m, _ := z.Member.(string)
			b.v.ZSet = append(b.v.ZSet, pipeline.ScoredMember{Member: []byte(m), Score: z.Score})
			b.bytes += encoded([]byte(m)) + 24
			if b.full() {
				if err := b.flush(piece, big.Type); err != nil {
					return err
				}
			}
		}
		if n < page {
			return b.flush(piece, big.Type)
		}
	}
}
