package redisconn

import (
	"context"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// IsCluster reports whether the server cl is connected to runs in cluster
// mode.
func IsCluster(ctx context.Context, cl *goredis.Client) (bool, error) {
	info, err := cl.Info(ctx, "cluster").Result()
	if err != nil {
		return false, err
	}
	return strings.Contains(info, "cluster_enabled:1"), nil
}

// ConnectCluster opens a cluster client seeded with conn's address.
func ConnectCluster(ctx context.Context, conn Conn) (*goredis.ClusterClient, error) {
	o := conn.Options()
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
