package redis

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
)

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	// Name is the pipeline's name, written into the events' source block.
	Name string
	// Types selects keys by type; empty means every carried type.
	Types []pipeline.Type
	// MaxElements is the largest collection copied, MaxValueBytes the
	// largest string; larger keys are rejected.
	MaxElements   int
	MaxValueBytes int
	// ChunkElements and ChunkBytes bound what is read in one piece: a
	// collection with more elements, or more bytes in memory, is streamed
	// in pieces of at most ChunkElements elements and about ChunkBytes of
	// encoded event (see Stream). Defaults 10,000 and 256 KiB.
	ChunkElements int
	ChunkBytes    int
	// Epoch is the version epoch of the reads, shared by every reader of a
	// pipeline: it moves on when the clock domain changes (a cluster
	// failover), and reads after that must win over reads before. Nil means
	// epoch 0.
	Epoch *pipeline.Epoch
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// ReadCounts are the keys of a read that did not become events or rejects
// at once.
type ReadCounts struct {
	// Vanished keys no longer existed when read.
	Vanished int64
	// Skipped keys were of a type not selected.
	Skipped int64
	// Big keys must be read in pieces, with Stream.
	Big []BigKey
}

// BigKey is a collection too large to read in one piece. Its version and
// expiry were read atomically with its size; Stream reads its elements.
type BigKey struct {
	Key    string
	Type   pipeline.Type
	Size   int64
	micros uint64
	pttl   int64
}

// Reader reads keys into versioned events, a page at a time, with one
// pipelined round trip per page. The snapshot, live capture and reconcile
// all read keys through it, so they agree on what a key's event is.
type Reader struct {
	cl    goredis.UniversalClient
	conn  Conn
	opts  ReaderOptions
	types string
	log   *slog.Logger
}

// NewReader returns a reader on cl — a server, or a cluster client, since
// every command it sends names its key; conn describes the connection.
func NewReader(cl goredis.UniversalClient, conn Conn, opts ReaderOptions) *Reader {
	if opts.MaxElements <= 0 {
		opts.MaxElements = 100_000
	}
	if opts.MaxValueBytes <= 0 {
		opts.MaxValueBytes = 1_000_000
	}
	if opts.ChunkElements <= 0 {
		opts.ChunkElements = 10_000
	}
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = 256 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Reader{cl: cl, conn: conn, opts: opts, types: typesArg(opts.Types), log: opts.Logger}
}

// Prepare loads the read script into the server's script cache.
func (r *Reader) Prepare(ctx context.Context) error {
	if err := readScript.Load(ctx, r.cl).Err(); err != nil {
		return fmt.Errorf("load read script: %w", Explain(r.conn, err))
	}
	return nil
}

// Read reads keys and returns their events (with origin and, in each
// event's source block, position pos) and the keys that cannot be events.
// For a live or repair read, a key that no longer exists is a delete event;
// a snapshot only counts it (it was deleted after SCAN returned it, and
// live capture reports the delete).
// A transient failure is retried for the whole page for up to two minutes.
func (r *Reader) Read(ctx context.Context, keys []string, origin pipeline.Origin, pos []byte) (pipeline.Batch, ReadCounts, error) {
	var b pipeline.Batch
	var counts ReadCounts
	if len(keys) == 0 {
		return b, counts, nil
	}
	var cmds []*goredis.Cmd
	err := retry(ctx, r.log, "read keys", func() error {
		pipe := r.cl.Pipeline()
		cmds = make([]*goredis.Cmd, len(keys))
		for i, k := range keys {
			cmds[i] = readScript.EvalSha(ctx, pipe, []string{k}, r.types, r.opts.MaxElements, r.opts.MaxValueBytes,
				r.opts.ChunkElements, r.opts.ChunkBytes)
		}
		_, err := pipe.Exec(ctx)
		if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			// Redis restarted or flushed its scripts: load it again.
			if lerr := readScript.Load(ctx, r.cl).Err(); lerr != nil {
				return lerr
			}
		}
		return err
	})
	if err != nil {
		return b, counts, Explain(r.conn, err)
	}
	live := origin != pipeline.OriginSnapshot
	for i, k := range keys {
		res, err := parseRead(k, cmds[i].Val())
		if err != nil {
			return b, counts, err
		}
		switch res.kind {
		case "none":
			counts.Vanished++
			if live {
				// Live capture reads a key because something changed it;
				// gone means deleted (DEL, expiry, eviction, RENAME's old
				// name, MOVE to another database).
				b.Events = append(b.Events, pipeline.Event{
					Key: []byte(k), Op: pipeline.OpDelete, Origin: origin,
					Version: pipeline.ClockVersion(r.opts.Epoch.Load(), res.micros, true),
					Source:  r.source(pos, res.micros),
				})
			}
			continue
		case "skip":
			counts.Skipped++
			continue
		case "big":
			b.Rejects = append(b.Rejects, pipeline.Reject{Key: []byte(k), Class: pipeline.RejectBigKey, Size: res.size,
				Err: fmt.Errorf("%s of size %d is over the limit (%d elements for a collection, %d bytes for a string) (raise --max-elements/--max-value-bytes or exclude the key)",
					res.typ, res.size, r.opts.MaxElements, r.opts.MaxValueBytes)})
			continue
		case "chunk":
			t, err := pipeline.ParseType(res.typ)
			if err != nil {
				return b, counts, err
			}
			counts.Big = append(counts.Big, BigKey{Key: k, Type: t, Size: res.size, micros: res.micros, pttl: res.pttl})
			continue
		case "unsupported":
			b.Rejects = append(b.Rejects, pipeline.Reject{Key: []byte(k), Class: pipeline.RejectUnsupportedType,
				Err: fmt.Errorf("type %s is not carried by cutover (only string, hash, list, set and zset)", res.typ)})
			continue
		}
		v, err := res.toValue(k)
		if err != nil {
			return b, counts, err
		}
		b.Events = append(b.Events, pipeline.Event{
			Key:      []byte(k),
			Op:       pipeline.OpUpsert,
			Origin:   origin,
			Version:  pipeline.ClockVersion(r.opts.Epoch.Load(), res.micros, live),
			Value:    v,
			ExpireAt: res.expireAt(),
			Source:   r.source(pos, res.micros),
		})
	}
	return b, counts, nil
}

func (r *Reader) source(pos []byte, micros uint64) pipeline.SourceInfo {
	return pipeline.SourceInfo{
		Connector: "redis", Name: r.opts.Name, DB: r.conn.DB, Node: r.conn.Addr,
		Position: pos, Time: time.UnixMicro(int64(micros)),
	}
}
