package redisconn

import (
	"context"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// Server is a connected Redis deployment: a standalone server (or the
// master sentinels name), and, when that server is a cluster node, the
// whole cluster.
type Server struct {
	// Conn reaches the server; its Addr is the master's when sentinels
	// named it.
	Conn Conn
	// Seed is connected to that server; Cluster reaches every slot of its
	// cluster, nil when it is not a cluster node.
	Seed    *goredis.Client
	Cluster *goredis.ClusterClient
	// Sentinel is the sentinels that named the master, nil without.
	Sentinel *Sentinel
}

// Close closes the server's clients.
func (s *Server) Close() {
	if s.Cluster != nil {
		s.Cluster.Close() //nolint:gosec // shutting down
	}
	s.Seed.Close() //nolint:gosec // shutting down
}

// Dial connects to the deployment conn names, or, with sentinel, to the
// master the sentinels name (conn.Addr is then ignored). A target's seed
// follows the sentinels' master after a failover (follow); a source's
// stays on the server it read, which its own topology watch replaces.
// A cluster node opens a cluster client too; a cluster named by
// sentinels, or a database other than 0 on a cluster, is refused with
// the flag to change.
func Dial(ctx context.Context, conn Conn, sentinel *Sentinel, follow bool) (*Server, error) {
	s := &Server{Conn: conn, Sentinel: sentinel}
	if sentinel != nil {
		addr, err := sentinel.Master(ctx)
		if err != nil {
			return nil, err
		}
		s.Conn.Addr = addr
	}
	var err error
	if sentinel != nil && follow {
		s.Seed = sentinel.FailoverClient(s.Conn)
		if err := s.Seed.Ping(ctx).Err(); err != nil {
			s.Seed.Close() //nolint:gosec // the ping error is the one to report
			return nil, Explain(s.Conn, err)
		}
	} else if s.Seed, err = Connect(ctx, s.Conn); err != nil {
		return nil, err
	}
	cluster, err := IsCluster(ctx, s.Seed)
	if err == nil && cluster {
		err = s.clusterOK()
		if err == nil {
			s.Cluster, err = ConnectCluster(ctx, s.Conn)
		}
	} else if err != nil {
		err = Explain(s.Conn, err)
	}
	if err != nil {
		s.Seed.Close() //nolint:gosec // the error to report is err
		return nil, err
	}
	return s, nil
}

// clusterOK refuses what a cluster node cannot be: named by sentinels, or
// asked for a database other than 0.
func (s *Server) clusterOK() error {
	addrFlag, _, _, _ := s.Conn.flags()
	prefix := strings.TrimSuffix(addrFlag, "-addr")
	if s.Sentinel != nil {
		return fmt.Errorf("the sentinels name %s as master %q, but it is a cluster node: a cluster needs no sentinels (drop %s-sentinel-addrs and set %s)",
			s.Conn.Addr, s.Sentinel.MasterName, prefix, addrFlag)
	}
	if s.Conn.DB != 0 {
		return fmt.Errorf("redis %s is a cluster node: a cluster has only database 0 (drop %s-db)", s.Conn.Addr, prefix)
	}
	return nil
}
