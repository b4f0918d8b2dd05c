package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// Topology is where a Redis source's keys live, for a read of all of them
// at one moment (reconcile's scan, plan's sample and checks): the
// configured server, the master the sentinels name, or every master of a
// cluster. A Source follows changes of its topology itself; a Topology
// is asked again for each read.
type Topology struct {
	// Conn is the source's connection settings; Seed the client connected
	// with them.
	Conn Conn
	Seed *goredis.Client
	// Cluster is set when the source is a Redis Cluster.
	Cluster *goredis.ClusterClient
	// Sentinel, when set, names the master.
	Sentinel *Sentinel
}

// Node is one server of a Topology.
type Node struct {
	Conn   Conn
	Client *goredis.Client
	own    bool // Client was opened for this node and is closed with it
}

// Close closes the node's own connection (not the seed's).
func (n *Node) Close() {
	if n.own {
		n.Client.Close() //nolint:gosec // shutting down
	}
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
		return nil, Explain(t.Conn, err)
	}
	return shards, nil
}

// Open connects to one server (the seed connection for a standalone
// server). A server the sentinels name that is a replica is refused: it
// lags, and a reader would compare (and repair) with old values.
func (t *Topology) Open(ctx context.Context, shard Shard) (*Node, error) {
	if t.Cluster == nil && t.Sentinel == nil {
		return &Node{Conn: t.Conn, Client: t.Seed}, nil
	}
	conn := t.Conn
	conn.Addr = shard.Addr
	cl, err := Connect(ctx, conn)
	if err != nil {
		return nil, err
	}
	if t.Sentinel != nil {
		master, err := IsMaster(ctx, cl)
		if err == nil && !master {
			err = fmt.Errorf("the sentinels name %s as master %q, but it is a replica (a failover in progress?): run again", shard.Addr, t.Sentinel.MasterName)
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
				err = Explain(node.Conn, err)
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
