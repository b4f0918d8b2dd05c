package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
)

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	// Name is the pipeline's name, written into the events' source block.
	Name string
	// Types selects keys by type; empty means every carried type.
	Types []pipeline.Type
	// MaxElements is the largest collection copied, MaxValueBytes the
	// largest string; larger keys are rejected. A string too long for one
	// Kafka record travels in pieces, like a big collection. Zero means
	// 100,000 elements and 512 MiB (the largest string Redis holds); the
	// CLI passes source.redis.max_elements and source.redis.max_value_bytes,
	// whose defaults differ.
	MaxElements   int
	MaxValueBytes int
	// ChunkElements and ChunkBytes bound what is read in one piece: a
	// collection with more elements, or more bytes in memory, is streamed
	// in pieces of at most ChunkElements elements and about ChunkBytes of
	// encoded event (see Stream). Zero means 10,000 and 256 KiB; the CLI
	// passes source.redis.chunk_elements and source.redis.chunk_bytes.
	ChunkElements int
	ChunkBytes    int
	// MaxRecordBytes is the largest event Kafka takes (key and encoded
	// value); a big key's pieces are cut to fit it. Zero means 1,000,000,
	// the publisher's own default (kafka.DefaultMaxRecordBytes); the CLI
	// passes kafka.max_record_bytes.
	MaxRecordBytes int
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
	// Elsewhere are keys this server does not serve right now: their slot
	// is being migrated to another master of the cluster (MOVED or ASK).
	// They are neither events nor deletes: the master that takes the
	// slot over heals it once the migration ends.
	Elsewhere []string
}

// RejectUnreadable is the reject class of a key the source's user may not
// read (Redis ACL key permissions).
const RejectUnreadable = pipeline.RejectUnreadable

// BigKey is a collection too large to read in one piece. Its version and
// expiry were read atomically with its size; Stream reads its elements.
type BigKey struct {
	Key    string
	Type   pipeline.Type
	Size   int64
	epoch  uint64
	micros uint64
	pttl   int64
	via    *Reader // the reader that read it, when not the snapshot's own
}

// Reader reads keys into versioned events, a page at a time, with one
// script call per page (per slot of the page, on a cluster) in one
// pipelined round trip, more only when the page's values are large (see
// pageBytes). The snapshot, live capture and reconcile all read keys
// through it, so they agree on what a key's event is.
type Reader struct {
	cl    goredis.UniversalClient
	conn  redisconn.Conn
	opts  ReaderOptions
	types string
	log   *slog.Logger
	// bySlot groups a page's keys by cluster slot: cl is a cluster
	// client, or a server refused a page's keys as in more than one slot.
	bySlot atomic.Bool
	// pageBytes is the reply budget of one page call (pageBytes; tests
	// make it smaller).
	pageBytes int
}

// NewReader returns a reader on cl — a server, or a cluster client, since
// every command it sends names its keys (a master of a cluster, reached
// with its own client, is found to be one by its first page, which it
// refuses as cross-slot); conn describes the connection.
func NewReader(cl goredis.UniversalClient, conn redisconn.Conn, opts ReaderOptions) *Reader {
	if opts.MaxElements <= 0 {
		opts.MaxElements = 100_000
	}
	if opts.MaxValueBytes <= 0 {
		opts.MaxValueBytes = 512 << 20
	}
	if opts.ChunkElements <= 0 {
		opts.ChunkElements = 10_000
	}
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = 256 << 10
	}
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = 1_000_000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Reader{cl: cl, conn: conn, opts: opts, types: typesArg(opts.Types), log: opts.Logger, pageBytes: pageBytes}
	_, cluster := cl.(*goredis.ClusterClient)
	r.bySlot.Store(cluster)
	return r
}

// Prepare loads the read scripts into the server's script cache.
func (r *Reader) Prepare(ctx context.Context) error {
	if err := r.load(ctx); err != nil {
		return fmt.Errorf("load read scripts: %w", redisconn.Explain(r.conn, err))
	}
	return nil
}

// Read reads keys and returns their events (with origin and, in each
// event's source block, position pos) and the keys that cannot be events.
// For a live or repair read, a key that no longer exists is a delete event;
// a snapshot only counts it (it was deleted after SCAN returned it, and
// live capture reports the delete).
//
// A key the user may not read (ACL) is a reject of class
// RejectUnreadable, and a key whose slot this server no longer serves is
// in ReadCounts.Elsewhere: neither is ever taken for deleted. Any other
// failure is retried for the whole page for up to two minutes, then
// returned: a page is read whole or not at all.
//
// The keys of one script call are read at one instant: the call runs
// atomically and takes the server's TIME once, and every read in it sees
// the state at that TIME, which is the version of all of them.
//
// Every event of the page carries the epoch that was current when the
// page was sent; if the epoch moved on while the page was in flight, the
// page is read again, so that no read executed before the move can carry
// the new epoch (and outrank reads made after it).
func (r *Reader) Read(ctx context.Context, keys []string, origin pipeline.Origin, pos []byte) (pipeline.Batch, ReadCounts, error) {
	var b pipeline.Batch
	var counts ReadCounts
	if len(keys) == 0 {
		return b, counts, nil
	}
	var reads []keyRead
	var epoch uint64
	err := retryRead(ctx, r.log, "read keys", func() error {
		epoch = r.opts.Epoch.Load()
		var err error
		if reads, err = r.readPage(ctx, keys); err != nil {
			return err
		}
		if r.opts.Epoch.Load() != epoch {
			return errEpochMoved
		}
		return nil
	})
	if err != nil {
		return b, counts, redisconn.Explain(r.conn, err)
	}
	live := origin != pipeline.OriginSnapshot
	for i, k := range keys {
		if err := reads[i].err; err != nil {
			if isElsewhere(err) {
				counts.Elsewhere = append(counts.Elsewhere, k)
				continue
			}
			b.Rejects = append(b.Rejects, pipeline.Reject{Key: []byte(k), Class: RejectUnreadable,
				Err: fmt.Errorf("redis %s: user %q may not read this key: %w (grant it with an ACL key pattern, or leave it out with --exclude)",
					r.conn.Addr, r.conn.User(), err)})
			continue
		}
		res := reads[i].res
		switch res.kind {
		case "none":
			counts.Vanished++
			if live {
				// Live capture reads a key because something changed it;
				// gone means deleted (DEL, expiry, eviction, RENAME's old
				// name, MOVE to another database).
				b.Events = append(b.Events, pipeline.Event{
					Key: []byte(k), Op: pipeline.OpDelete, Origin: origin,
					Version: pipeline.ClockVersion(epoch, res.micros, true),
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
			counts.Big = append(counts.Big, BigKey{Key: k, Type: t, Size: res.size, epoch: epoch, micros: res.micros, pttl: res.pttl})
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
			Version:  pipeline.ClockVersion(epoch, res.micros, live),
			Value:    v,
			ExpireAt: res.expireAt(),
			Source:   r.source(pos, res.micros),
		})
	}
	return b, counts, nil
}

// errEpochMoved makes Read read a page again: the epoch moved on while it
// was in flight.
var errEpochMoved = errors.New("the version epoch moved on during the read; reading again")

// isKeyForbidden reports whether err refuses access to a key (an ACL key
// pattern), as opposed to a command the user may not run at all.
func isKeyForbidden(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "NOPERM") && strings.Contains(msg, "key")
}

// isElsewhere reports whether err says the key's slot is served by
// another node (a cluster slot migrating or migrated).
func isElsewhere(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ")
}

func isNoScript(err error) bool { return strings.HasPrefix(err.Error(), "NOSCRIPT") }

// wholeString is the longest string read whole: one that fits in a Kafka
// record once encoded (base64 grows it by a third). A longer one travels
// in pieces of ChunkBytes.
func (r *Reader) wholeString() int {
	return max(r.opts.ChunkBytes, (r.opts.MaxRecordBytes-pieceOverhead)/4*3)
}

func (r *Reader) source(pos []byte, micros uint64) pipeline.SourceInfo {
	return pipeline.SourceInfo{
		Connector: "redis", Name: r.opts.Name, DB: r.conn.DB, Node: r.conn.Addr,
		Position: pos, Time: time.UnixMicro(int64(micros)),
	}
}
