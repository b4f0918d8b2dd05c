package redisconn

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
// follows it to a new master after a failover (see sources/redis.Source); the sink
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
	o := c.Options()
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
