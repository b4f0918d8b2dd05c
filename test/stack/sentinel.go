package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// SentinelMaster is the name the sentinels of a RedisSentinel monitor.
const SentinelMaster = "cutover-test"

// RedisSentinel is a replicated Redis watched by Redis Sentinel, private
// to one test: a master, one replica and three sentinels (a quorum of
// two), on loopback.
type RedisSentinel struct {
	// Nodes are the data servers; which one is the master changes with
	// Failover (see Master).
	Nodes []*Redis
	// Addrs are the sentinels' addresses.
	Addrs []string
	t     testing.TB
}

// NewRedisSentinel starts the servers and waits until the sentinels
// know the master, its replica and each other.
func NewRedisSentinel(t testing.TB) *RedisSentinel {
	t.Helper()
	master := NewRedis(t, "--repl-diskless-sync-delay", "0")
	host, port, _ := strings.Cut(master.Addr, ":")
	replica := NewRedis(t, "--replicaof", host, port, "--repl-diskless-sync-delay", "0")
	g := &RedisSentinel{Nodes: []*Redis{master, replica}, t: t}
	for range 3 {
		g.Addrs = append(g.Addrs, startSentinel(t, master.Addr))
	}
	// Sentinels discover each other and the replica through the master's
	// hello channel and INFO: a failover needs all of it.
	g.waitFor(time.Minute, "the sentinels to know the replica and each other", func(ctx context.Context) bool {
		for _, a := range g.Addrs {
			cl := goredis.NewSentinelClient(&goredis.Options{Addr: a})
			m, err := cl.Master(ctx, SentinelMaster).Result()
			cl.Close()
			if err != nil || m["num-other-sentinels"] != "2" || m["num-slaves"] != "1" {
				return false
			}
		}
		return replicaInSync(ctx, replica.Client)
	})
	return g
}

// startSentinel starts one sentinel monitoring master; it returns its
// address. Sentinel rewrites its configuration file, so it gets its own.
func startSentinel(t testing.TB, master string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed: %v\ninstall it with `deploy/local/stack up redis` (make test does this)", err)
	}
	dir := t.TempDir()
	host, mport, _ := strings.Cut(master, ":")
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("bind 127.0.0.1\nport %d\ndir %s\nsentinel monitor %s %s %s 2\n"+
			"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 10000\nsentinel parallel-syncs %s 1\n",
			port, dir, SentinelMaster, host, mport, SentinelMaster, SentinelMaster, SentinelMaster)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, conf, "--sentinel")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server --sentinel: %v", err)
		}
		if waitPort(addr, 5*time.Second) {
			t.Cleanup(func() {
				cmd.Process.Kill() //nolint:errcheck // test teardown
				cmd.Wait()         //nolint:errcheck // reaped
			})
			return addr
		}
		cmd.Process.Kill() //nolint:errcheck // retrying on another port
		cmd.Wait()         //nolint:errcheck // reaped
		if attempt == 2 {
			t.Fatalf("a sentinel did not start on %s", addr)
		}
	}
}

// Master returns the data server the sentinels name as master now.
func (g *RedisSentinel) Master(ctx context.Context) (*Redis, error) {
	cl := goredis.NewSentinelClient(&goredis.Options{Addr: g.Addrs[0]})
	defer cl.Close()
	hp, err := cl.GetMasterAddrByName(ctx, SentinelMaster).Result()
	if err != nil {
		return nil, err
	}
	for _, n := range g.Nodes {
		if n.Addr == hp[0]+":"+hp[1] {
			return n, nil
		}
	}
	return nil, fmt.Errorf("the sentinels name %s:%s, not a server of this group", hp[0], hp[1])
}

// Failover asks a sentinel to fail the master over to its replica, and
// waits until the sentinels name the replica, it answers as master, and
// the old master replicates from it.
func (g *RedisSentinel) Failover() {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	old, err := g.Master(ctx)
	if err != nil {
		g.t.Fatal(err)
	}
	cl := goredis.NewSentinelClient(&goredis.Options{Addr: g.Addrs[0]})
	defer cl.Close()
	if err := cl.Failover(ctx, SentinelMaster).Err(); err != nil {
		g.t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	g.waitFor(2*time.Minute, "the failover to end", func(ctx context.Context) bool {
		m, err := g.Master(ctx)
		if err != nil || m == old {
			return false
		}
		role, err := m.Client.Do(ctx, "ROLE").Slice()
		return err == nil && len(role) > 0 && role[0] == "master" && replicaInSync(ctx, old.Client)
	})
}

// replicaInSync reports whether cl is a replica whose link to its master
// is up.
func replicaInSync(ctx context.Context, cl *goredis.Client) bool {
	info, err := cl.Info(ctx, "replication").Result()
	return err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up")
}

func (g *RedisSentinel) waitFor(within time.Duration, what string, ok func(context.Context) bool) {
	g.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		done := ok(ctx)
		cancel()
		if done {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
