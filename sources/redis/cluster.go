package redis

import (
	"context"
	"fmt"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// Shard is one master of a Redis Cluster and the slots it serves. A
// standalone server is one shard with no slots.
type Shard struct {
	Addr  string
	ID    string
	Slots [][2]int
}

// Equal reports whether two shards are the same master serving the same
// slots.
func (s Shard) Equal(o Shard) bool {
	return s.Addr == o.Addr && s.ID == o.ID && slices.Equal(s.Slots, o.Slots)
}

// IsCluster reports whether the server cl is connected to runs in cluster
// mode.
func IsCluster(ctx context.Context, cl *goredis.Client) (bool, error) {
	info, err := cl.Info(ctx, "cluster").Result()
	if err != nil {
		return false, err
	}
	return strings.Contains(info, "cluster_enabled:1"), nil
}

// ClusterShards lists the cluster's masters and their slots (CLUSTER
// SLOTS), sorted by address.
func ClusterShards(ctx context.Context, cl goredis.Cmdable) ([]Shard, error) {
	slots, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS: %w", err)
	}
	byAddr := map[string]*Shard{}
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			continue
		}
		m := s.Nodes[0] // the master comes first
		sh := byAddr[m.Addr]
		if sh == nil {
			sh = &Shard{Addr: m.Addr, ID: m.ID}
			byAddr[m.Addr] = sh
		}
		sh.Slots = append(sh.Slots, [2]int{int(s.Start), int(s.End)})
	}
	out := make([]Shard, 0, len(byAddr))
	for _, sh := range byAddr {
		slices.SortFunc(sh.Slots, func(a, b [2]int) int { return a[0] - b[0] })
		out = append(out, *sh)
	}
	slices.SortFunc(out, func(a, b Shard) int { return strings.Compare(a.Addr, b.Addr) })
	return out, nil
}

// ConnectCluster opens a cluster client seeded with conn's address.
func ConnectCluster(ctx context.Context, conn Conn) (*goredis.ClusterClient, error) {
	o := conn.options()
	cl := goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs: []string{conn.Addr}, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig,
		PoolSize: o.PoolSize, DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		ContextTimeoutEnabled: true, DisableIdentity: true, MaxRetries: -1,
	})
	if err := cl.Ping(ctx).Err(); err != nil {
		cl.Close() //nolint:gosec // the ping error is the one to report
		return nil, Explain(conn, err)
	}
	return cl, nil
}
