package redis

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
)

// scanPage is one SCAN call: the keys that pass the filter, the next
// cursor, and how many keys SCAN returned in all.
func scanPage(ctx context.Context, cl *goredis.Client, conn Conn, log *slog.Logger, f pipeline.KeyFilter, types []pipeline.Type,
	cursor uint64, count int) (kept []string, next uint64, returned int, err error) {
	match := f.ScanMatch()
	var keys []string
	err = retry(ctx, log, "scan", func() error {
		var err error
		if len(types) == 1 {
			keys, next, err = cl.ScanType(ctx, cursor, match, int64(count), types[0].String()).Result()
		} else {
			keys, next, err = cl.Scan(ctx, cursor, match, int64(count)).Result()
		}
		return err
	})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("scan at cursor %d: %w", cursor, Explain(conn, err))
	}
	kept = keys[:0]
	for _, k := range keys {
		if f.Keep(k) {
			kept = append(kept, k)
		}
	}
	return kept, next, len(keys), nil
}

// Scanner walks a database page by page and reads each page, without
// publishing or checkpointing anything: what reconcile uses to read the
// source.
type Scanner struct {
	cl     *goredis.Client
	conn   Conn
	filter pipeline.KeyFilter
	types  []pipeline.Type
	count  int
	reader *Reader
	log    *slog.Logger

	cursor  uint64
	started bool

	exists goredis.Cmdable // answers Exists; the node itself unless set
}

// Scanners walks several nodes one after the other — every master of a
// cluster — and answers Exists through a client that reaches every slot.
type Scanners struct {
	nodes  []*Scanner // still to walk
	all    []*Scanner
	exists goredis.Cmdable
}

// NewScanners chains scanners; exists (a cluster client) answers Exists.
func NewScanners(nodes []*Scanner, exists goredis.Cmdable) *Scanners {
	for _, n := range nodes {
		n.exists = exists
	}
	return &Scanners{nodes: nodes, all: nodes, exists: exists}
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
func NewScanner(cl *goredis.Client, conn Conn, filter pipeline.KeyFilter, scanCount int, opts ReaderOptions) *Scanner {
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
	if s.started && s.cursor == 0 {
		return b, true, nil
	}
	s.started = true
	keys, next, _, err := scanPage(ctx, s.cl, s.conn, s.log, s.filter, s.types, s.cursor, s.count)
	if err != nil {
		return b, false, err
	}
	b, info, err := s.reader.Read(ctx, keys, pipeline.OriginRepair, nil)
	if err != nil {
		return b, false, err
	}
	for _, big := range info.Big {
		b.Rejects = append(b.Rejects, pipeline.Reject{Key: []byte(big.Key), Class: pipeline.RejectBigKey, Size: big.Size,
			Err: fmt.Errorf("a %s of %d elements is copied in pieces; reconcile does not compare it yet", big.Type, big.Size)})
	}
	s.cursor = next
	return b, next == 0, nil
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
	err := retry(ctx, s.log, "type", func() error {
		pipe := client.Pipeline()
		cmds = make([]*goredis.StatusCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.Type(ctx, string(k))
		}
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		return nil, Explain(s.conn, err)
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
