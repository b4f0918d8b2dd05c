package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Sentinel is a Redis Sentinel group that names the master of a
// replicated Redis: the source reads whichever server it names, and
// follows it to a new master after a failover (see Source); the sink
// writes through a client that does the same (FailoverClient).
type Sentinel struct {
	// Addrs are the sentinels, host:port.
	Addrs []string
	// MasterName is the name the sentinels monitor the master under.
	MasterName string
	// Username and Password log in to the sentinels, not to the data
	// nodes (Conn has those).
	Username, Password string
	// TLS, when set, is used to reach the sentinels: the data nodes'
	// setting (go-redis takes one for both).
	TLS *tls.Config
}

// Master asks the sentinels, one after the other, for the master's
// address: the first that knows it answers.
func (s *Sentinel) Master(ctx context.Context) (string, error) {
	var errs []error
	for _, addr := range s.Addrs {
		cl := goredis.NewSentinelClient(&goredis.Options{Addr: addr, Username: s.Username, Password: s.Password, TLSConfig: s.TLS,
			DialTimeout: 3 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second, MaxRetries: -1,
			ContextTimeoutEnabled: true, DisableIdentity: true})
		hp, err := cl.GetMasterAddrByName(ctx, s.MasterName).Result()
		cl.Close() //nolint:gosec // a one-off question
		if err == nil && len(hp) == 2 {
			return hp[0] + ":" + hp[1], nil
		}
		if errors.Is(err, goredis.Nil) {
			err = fmt.Errorf("it monitors no master named %q", s.MasterName)
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("no sentinel of %s names the master %q (check --redis-sentinel-addrs and --redis-master-name, and that the sentinels answer): %w",
		strings.Join(s.Addrs, ","), s.MasterName, errors.Join(errs...))
}

// FailoverClient is a client of whichever server the sentinels name as
// the master, logged in as c says: after a failover its new connections
// go to the new master. It does not retry on its own; its caller owns
// the retries (a write refused by a demoted master, READONLY, is one).
func (s *Sentinel) FailoverClient(c Conn) *goredis.Client {
	o := c.options()
	return goredis.NewFailoverClient(&goredis.FailoverOptions{
		MasterName: s.MasterName, SentinelAddrs: s.Addrs, SentinelUsername: s.Username, SentinelPassword: s.Password,
		Username: o.Username, Password: o.Password, DB: o.DB, TLSConfig: o.TLSConfig,
		PoolSize: o.PoolSize, DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		ContextTimeoutEnabled: true, DisableIdentity: true, MaxRetries: -1,
	})
}

// IsMaster reports whether the server cl is connected to is a master
// (ROLE): right after a failover a sentinel may still name the old one.
func IsMaster(ctx context.Context, cl *goredis.Client) (bool, error) {
	role, err := cl.Do(ctx, "ROLE").Slice()
	if err != nil {
		return false, err
	}
	return len(role) > 0 && role[0] == "master", nil
}

// sameMaster runs a backfill's snapshot (which does not follow failovers)
// and fails it if the master failed over meanwhile: a demoted master that
// resynchronised from the new one replaced its data under the SCAN, which
// may then have missed keys. The master's replication ID changes at every
// promotion, so a failover and a failback are caught too.
func (s *Source) sameMaster(ctx context.Context, snapshot func() error) error {
	nodes := s.nodes.running()
	if len(nodes) != 1 {
		return snapshot()
	}
	cl := nodes[0].node.cl
	before, err := replID(ctx, cl)
	if err != nil {
		return fmt.Errorf("read the replication ID of master %s: %w", nodes[0].node.conn.Addr, err)
	}
	if err := snapshot(); err != nil {
		return err
	}
	after, err := replID(ctx, cl)
	if err == nil && after != before {
		err = fmt.Errorf("its replication ID changed from %s to %s", before, after)
	}
	if err == nil {
		var master bool
		if master, err = IsMaster(ctx, cl); err == nil && !master {
			err = errors.New("it is a replica now")
		}
	}
	if err != nil {
		return fmt.Errorf("master %q (%s) failed over during the backfill (%w): keys may have been missed; run the backfill again, it scans the new master from the start",
			s.opts.Sentinel.MasterName, nodes[0].node.conn.Addr, err)
	}
	return nil
}

// replID is the server's replication ID (INFO replication master_replid).
func replID(ctx context.Context, cl *goredis.Client) (string, error) {
	id, err := infoField(ctx, cl, "replication", "master_replid")
	if err == nil && id == "" {
		err = errors.New("INFO replication has no master_replid")
	}
	return id, err
}
