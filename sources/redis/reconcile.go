package redis

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
)

// Scanner walks a database page by page and reads each page, without
// publishing or checkpointing anything: what reconcile uses to read the
// source.
type Scanner struct {
	cl     *goredis.Client
	conn   redisconn.Conn
	filter pipeline.KeyFilter
	types  []pipeline.Type
	count  int
	reader *Reader
	log    *slog.Logger

	cursor  uint64
	started bool

	exists goredis.Cmdable // answers Exists; the node itself unless set
	sample func(key string) bool
}

// Scanners walks several nodes one after the other — every master of a
// cluster — and answers Exists through a client that reaches every slot.
type Scanners struct {
	nodes  []*Scanner // still to walk
	all    []*Scanner
	exists goredis.Cmdable
	reader *Reader // reads keys again, through a client that reaches every slot
	filter pipeline.KeyFilter
}

// NewScanners chains scanners; exists (a cluster client) answers Exists,
// and reader (on a client that reaches every key) answers Read.
func NewScanners(nodes []*Scanner, exists goredis.Cmdable, reader *Reader) *Scanners {
	var filter pipeline.KeyFilter
	for _, n := range nodes {
		n.exists = exists
		filter = n.filter
	}
	return &Scanners{nodes: nodes, all: nodes, exists: exists, reader: reader, filter: filter}
}

// SetSample makes the walk read only about fraction of the keys (0 < f <
// 1): those whose hash, salted by this run, falls under the fraction.
// Keys are chosen before their values are read, so a sample costs the
// source reads in proportion to its size (SCAN itself still walks every
// key).
func (m *Scanners) SetSample(fraction float64) {
	if fraction <= 0 || fraction >= 1 {
		return
	}
	keep := sampleKeys(fraction)
	for _, n := range m.all {
		n.sample = keep
	}
}

// Read implements reconcile.Reader: the keys' current state as the
// pipeline reads it, a delete for a key that is gone or filtered out.
// A key too big to read whole is a reject (reconcile does not compare
// big keys yet).
func (m *Scanners) Read(ctx context.Context, keys [][]byte) (pipeline.Batch, error) {
	if m.reader == nil {
		return pipeline.Batch{}, fmt.Errorf("no reader")
	}
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		if m.filter.Keep(string(k)) {
			names = append(names, string(k))
		}
	}
	b, info, err := m.reader.Read(ctx, names, pipeline.OriginRepair, nil)
	if err != nil {
		return b, err
	}
	notRead(&b, info)
	return b, nil
}

// notRead turns the keys of a read that are neither events nor gone into
// rejects: reconcile must not compare (or repair) a key it could not read,
// and must never take it for deleted.
func notRead(b *pipeline.Batch, info ReadCounts) {
	for _, big := range info.Big {
		b.Rejects = append(b.Rejects, bigReject(big))
	}
	for _, k := range info.Elsewhere {
		b.Rejects = append(b.Rejects, pipeline.Reject{Key: []byte(k), Class: RejectUnreadable,
			Err: fmt.Errorf("its cluster slot is moving to another master: read it again once the move is over")})
	}
}

func bigReject(big BigKey) pipeline.Reject {
	return pipeline.Reject{Key: []byte(big.Key), Class: pipeline.RejectBigKey, Size: big.Size,
		Err: fmt.Errorf("a %s of %d elements is copied in pieces; reconcile does not compare it yet", big.Type, big.Size)}
}

// Prepare readies every node.
func (m *Scanners) Prepare(ctx context.Context) error {
	for _, n := range m.all {
		if err := n.Prepare(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Next implements reconcile.Source.
func (m *Scanners) Next(ctx context.Context) (pipeline.Batch, bool, error) {
	for len(m.nodes) > 0 {
		b, done, err := m.nodes[0].Next(ctx)
		if err != nil {
			return b, false, err
		}
		if done {
			m.nodes = m.nodes[1:]
		}
		if len(b.Events) > 0 || len(b.Rejects) > 0 || len(m.nodes) == 0 {
			return b, len(m.nodes) == 0, nil
		}
	}
	return pipeline.Batch{}, true, nil
}

// Exists implements reconcile.Checker.
func (m *Scanners) Exists(ctx context.Context, keys [][]byte) (map[string]bool, error) {
	if len(m.all) == 0 {
		return nil, fmt.Errorf("no nodes")
	}
	return m.all[0].Exists(ctx, keys)
}

// NewScanner returns a scanner; opts selects types and bounds reads as for
// a snapshot.
func NewScanner(cl *goredis.Client, conn redisconn.Conn, filter pipeline.KeyFilter, scanCount int, opts ReaderOptions) *Scanner {
	if scanCount <= 0 {
		scanCount = 1000
	}
	r := NewReader(cl, conn, opts)
	return &Scanner{cl: cl, conn: conn, filter: filter, types: opts.Types, count: scanCount, reader: r, log: r.log}
}

// Prepare readies the scanner's reads.
func (s *Scanner) Prepare(ctx context.Context) error { return s.reader.Prepare(ctx) }

// Next reads the next page. done is true once the walk is complete (the
// last page may still hold events).
func (s *Scanner) Next(ctx context.Context) (b pipeline.Batch, done bool, err error) {
	keys, next, more, err := s.nextKeys(ctx)
	if !more || err != nil {
		return b, !more, err
	}
	b, info, err := s.reader.Read(ctx, keys, pipeline.OriginRepair, nil)
	if err != nil {
		return b, false, err
	}
	notRead(&b, info)
	s.cursor = next
	return b, next == 0, nil
}

// nextKeys is the next SCAN page's keys that pass the filter and the
// sample, and the cursor after it; more is false once the walk is done.
// The caller moves s.cursor on once the page is read.
func (s *Scanner) nextKeys(ctx context.Context) (keys []string, next uint64, more bool, err error) {
	if s.started && s.cursor == 0 {
		return nil, 0, false, nil
	}
	s.started = true
	keys, next, _, err = scanPage(ctx, s.cl, s.conn, s.log, s.filter, s.types, s.cursor, s.count)
	if err != nil {
		return nil, 0, true, err
	}
	if s.sample != nil {
		keys = slices.DeleteFunc(keys, func(k string) bool { return !s.sample(k) })
	}
	return keys, next, true, nil
}

// Exists implements reconcile.Checker: which keys the source has and the
// pipeline would copy (filters and types apply).
func (s *Scanner) Exists(ctx context.Context, keys [][]byte) (map[string]bool, error) {
	out := make(map[string]bool, len(keys))
	var cmds []*goredis.StatusCmd
	client := s.exists
	if client == nil {
		client = s.cl
	}
	err := retryRead(ctx, s.log, "type", func() error {
		pipe := client.Pipeline()
		cmds = make([]*goredis.StatusCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.Type(ctx, string(k))
		}
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		return nil, redisconn.Explain(s.conn, err)
	}
	want := map[string]bool{}
	for _, t := range s.types {
		want[t.String()] = true
	}
	for i, k := range keys {
		t := cmds[i].Val()
		out[string(k)] = t != "none" && s.filter.Keep(string(k)) && (len(want) == 0 || want[t])
	}
	return out, nil
}
