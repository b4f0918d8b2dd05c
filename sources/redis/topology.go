package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
)

// Topology is where a Redis source's keys live, for a read of all of them
// at one moment (reconcile's scan, plan's sample and checks): the
// configured server, the master the sentinels name, or every master of a
// cluster. A Source follows changes of its topology itself; a Topology
// is asked again for each read.
type Topology struct {
	// Conn is the source's connection settings; Seed the client connected
	// with them.
	Conn redisconn.Conn
	Seed *goredis.Client
	// Cluster is set when the source is a Redis Cluster.
	Cluster *goredis.ClusterClient
	// Sentinel, when set, names the master.
	Sentinel *redisconn.Sentinel
}

// Node is one server of a Topology.
type Node struct {
	Conn   redisconn.Conn
	Client *goredis.Client
	own    bool // Client was opened for this node and is closed with it
}

// Close closes the node's own connection (not the seed's).
func (n *Node) Close() {
	if n.own {
		n.Client.Close() //nolint:gosec // shutting down
	}
}

// ProbeRead reads one random key of the node as the snapshot reads it
// (see Reader.Probe): a user who may not run the read's commands fails
// here, with the ACL to give. empty is set when the database holds no
// key.
func (n *Node) ProbeRead(ctx context.Context, opts ReaderOptions) (empty bool, err error) {
	key, err := n.Client.RandomKey(ctx).Result()
	switch {
	case errors.Is(err, goredis.Nil):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("%w (the source user needs the ACL in docs/redis.md)", redisconn.Explain(n.Conn, err))
	}
	if err := NewReader(n.Client, n.Conn, opts).Probe(ctx, key); err != nil {
		return false, fmt.Errorf("%w (the source user needs the ACL in docs/redis.md)", err)
	}
	return false, nil
}

// Shards returns the servers to read: the configured one, the master the
// sentinels name now, or every master of the cluster.
func (t *Topology) Shards(ctx context.Context) ([]Shard, error) {
	if t.Sentinel != nil {
		addr, err := t.Sentinel.Master(ctx)
		if err != nil {
			return nil, err
		}
		return []Shard{{Addr: addr}}, nil
	}
	if t.Cluster == nil {
		return []Shard{{Addr: t.Conn.Addr}}, nil
	}
	shards, err := ClusterShards(ctx, t.Cluster)
	if err != nil {
		return nil, redisconn.Explain(t.Conn, err)
	}
	return shards, nil
}

// Open connects to one server (the seed connection for a standalone
// server). A server the sentinels name that is a replica is refused: it
// lags, and a reader would compare (and repair) with old values.
func (t *Topology) Open(ctx context.Context, shard Shard) (*Node, error) {
	n, err := t.open(ctx, shard)
	var replica notMasterError
	if errors.As(err, &replica) {
		err = fmt.Errorf("%w: run again", err)
	}
	return n, err
}

// notMasterError says that the server the sentinels name is a replica.
type notMasterError struct{ addr, name string }

func (e notMasterError) Error() string {
	return fmt.Sprintf("the sentinels name %s as master %q, but it is a replica (a failover in progress?)", e.addr, e.name)
}

func (t *Topology) open(ctx context.Context, shard Shard) (*Node, error) {
	if t.Cluster == nil && t.Sentinel == nil {
		return &Node{Conn: t.Conn, Client: t.Seed}, nil
	}
	conn := t.Conn
	conn.Addr = shard.Addr
	cl, err := redisconn.Connect(ctx, conn)
	if err != nil {
		return nil, err
	}
	if t.Sentinel != nil {
		// Right after a failover a sentinel may still name the old
		// master: reading a replica would miss what it has not received.
		master, err := redisconn.IsMaster(ctx, cl)
		if err == nil && !master {
			err = notMasterError{addr: shard.Addr, name: t.Sentinel.MasterName}
		}
		if err != nil {
			cl.Close() //nolint:gosec // the role is the error to report
			return nil, err
		}
	}
	return &Node{Conn: conn, Client: cl, own: true}, nil
}

// OpenAll opens every server and returns them with the number of keys
// they hold (the sum of their DBSIZE). On an error it closes what it
// opened.
func (t *Topology) OpenAll(ctx context.Context) ([]*Node, int64, error) {
	shards, err := t.Shards(ctx)
	if err != nil {
		return nil, 0, err
	}
	var nodes []*Node
	var size int64
	for _, sh := range shards {
		node, err := t.Open(ctx, sh)
		if err == nil {
			nodes = append(nodes, node)
			var n int64
			if n, err = node.Client.DBSize(ctx).Result(); err != nil {
				err = redisconn.Explain(node.Conn, err)
			}
			size += n
		}
		if err != nil {
			for _, n := range nodes {
				n.Close()
			}
			return nil, 0, err
		}
	}
	return nodes, size, nil
}

// SampleOptions say what Topology.Sample reads.
type SampleOptions struct {
	// Keys is about how many keys to read, chosen at random from the
	// whole keyspace; All reads every key instead.
	Keys int64
	All  bool
	// Filter and Reader.Types leave keys out, as the snapshot does.
	Filter pipeline.KeyFilter
	Reader ReaderOptions
	// ScanCount is SCAN's COUNT hint.
	ScanCount int
	// KeysPerSecond paces the reads as the snapshot's; 0 does not limit.
	KeysPerSecond int
}

// SampleResult is what a sample stands for.
type SampleResult struct {
	// Keys is how many keys the source holds: their DBSIZE, or, when
	// filters leave keys out, the keys sampled scaled by the sample's
	// fraction (DBSIZE counts the keys the filters leave out too).
	Keys int64
	// Whole is set when the sample is every key (All, or a keyspace no
	// larger than Keys): counts made of it are exact.
	Whole bool
}

// Sample reads a random sample of the keys of every server, each exactly
// as the snapshot reads it, publishing nothing (see Sampler), and hands
// each page to visit. It is what `cutover plan` measures.
func (t *Topology) Sample(ctx context.Context, opts SampleOptions, visit func(*Sample)) (SampleResult, error) {
	nodes, size, err := t.OpenAll(ctx)
	if err != nil {
		return SampleResult{}, err
	}
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	fraction := 1.0
	if !opts.All && size > opts.Keys {
		fraction = float64(opts.Keys) / float64(size)
	}
	var limiter *rate.Limiter
	if kps := opts.KeysPerSecond; kps > 0 {
		limiter = rate.NewLimiter(rate.Limit(kps), max(opts.ScanCount, kps))
	}
	var sampled int64
	for _, node := range nodes {
		s := NewSampler(node.Client, node.Conn, opts.Filter, opts.ScanCount, fraction, opts.Reader)
		if err := s.Prepare(ctx); err != nil {
			return SampleResult{}, err
		}
		for done := false; !done; {
			var page Sample
			if page, done, err = s.Next(ctx); err != nil {
				return SampleResult{}, err
			}
			visit(&page)
			n := len(page.Batch.Events) + len(page.Batch.Rejects) + len(page.Counts.Big)
			sampled += int64(n)
			if limiter != nil && n > 0 {
				if err := limiter.WaitN(ctx, min(n, limiter.Burst())); err != nil {
					return SampleResult{}, err
				}
			}
		}
	}
	res := SampleResult{Keys: size, Whole: fraction == 1}
	if len(opts.Filter.Include) > 0 || len(opts.Filter.Exclude) > 0 || len(opts.Reader.Types) > 0 {
		res.Keys = int64(float64(sampled) / fraction)
	}
	return res, nil
}

// CompareOptions say how Topology.Compare reads the source.
type CompareOptions struct {
	// Filter and Reader.Types leave keys out, as the snapshot does.
	// Reader.Name names the pipeline; its Epoch is set by Compare.
	Filter pipeline.KeyFilter
	Reader ReaderOptions
	// ScanCount is SCAN's COUNT hint.
	ScanCount int
}

// Compare opens the source for reconcile's comparison: a Scanner per
// server, and a Reader over the whole source whose reads carry the
// pipeline's current epoch (from its checkpoint in ck), so that a repair
// made of them is stamped in it. It returns them with the number of keys
// the source holds (DBSIZE) and what closes the servers opened for it.
func (t *Topology) Compare(ctx context.Context, ck checkpoint.Store, opts CompareOptions) (*Scanners, int64, func(), error) {
	live, _, err := LoadState(ctx, ck, opts.Reader.Name)
	if err != nil {
		return nil, 0, nil, err
	}
	ropts := opts.Reader
	ropts.Epoch = pipeline.NewEpoch(live.Epoch)
	nodes, size, err := t.OpenAll(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	closeNodes := func() {
		for i := len(nodes) - 1; i >= 0; i-- {
			nodes[i].Close()
		}
	}
	scanners := make([]*Scanner, 0, len(nodes))
	for _, node := range nodes {
		scanners = append(scanners, NewScanner(node.Client, node.Conn, opts.Filter, opts.ScanCount, ropts))
	}
	var all goredis.UniversalClient = t.Seed
	if t.Cluster != nil {
		all = t.Cluster
	}
	reader := NewReader(all, t.Conn, ropts)
	if err := reader.Prepare(ctx); err != nil {
		closeNodes()
		return nil, 0, nil, err
	}
	src := NewScanners(scanners, all, reader)
	if err := src.Prepare(ctx); err != nil {
		closeNodes()
		return nil, 0, nil, err
	}
	return src, size, closeNodes, nil
}
