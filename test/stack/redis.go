package stack

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Redis is a private redis-server started for one test.
type Redis struct {
	Addr   string
	Dir    string
	Client *goredis.Client
	cmd    *exec.Cmd
	args   []string
	env    []string // extra environment of the server process (NewRedisEnv)
	bin    string
	killed bool
}

// command is the server's command line, with its extra environment.
func (r *Redis) command() *exec.Cmd {
	cmd := exec.Command(r.bin, r.args...)
	if len(r.env) > 0 {
		cmd.Env = append(os.Environ(), r.env...)
	}
	return cmd
}

// Restart saves the dataset, stops the server and starts it again on the
// same port and data directory: the data survives, the process (its
// run_id, its hash seed, its clients) does not.
func (r *Redis) Restart(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	if err := r.Client.Save(ctx).Err(); err != nil {
		t.Fatalf("redis SAVE before restart: %v", err)
	}
	r.cmd.Process.Kill() //nolint:errcheck // the dataset is saved
	r.cmd.Wait()         //nolint:errcheck // reaped
	r.cmd = r.command()
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("restart redis-server: %v", err)
	}
	if !waitPort(r.Addr, 10*time.Second) {
		t.Fatalf("redis-server did not come back on %s", r.Addr)
	}
	for r.Client.Ping(ctx).Err() != nil { // LOADING until the dataset is read
		time.Sleep(50 * time.Millisecond)
	}
}

// NewRedis starts redis-server on a free loopback port with a data
// directory under t.TempDir(), and stops it when the test ends. Extra
// arguments are passed to redis-server (e.g. "--requirepass", "secret").
func NewRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	return NewRedisEnv(t, nil, extra...)
}

// NewRedisEnv is NewRedis with extra environment variables (NAME=value)
// for the server process, kept across Restart: NewRedisClock uses it to
// preload libfaketime.
func NewRedisEnv(t testing.TB, env []string, extra ...string) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed: %v\ninstall it with `deploy/local/stack up redis` (make test does this)", err)
	}
	r := &Redis{Dir: t.TempDir(), bin: bin, env: env}
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		r.Addr = "127.0.0.1:" + strconv.Itoa(port)
		r.args = append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", r.Dir,
			"--save", "", "--appendonly", "no", "--daemonize", "no"}, extra...)
		r.cmd = r.command()
		r.cmd.Stdout, r.cmd.Stderr = nil, nil
		if err := r.cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		if waitPort(r.Addr, 5*time.Second) {
			break
		}
		r.cmd.Process.Kill() //nolint:errcheck // retrying on another port
		r.cmd.Wait()         //nolint:errcheck // reaped
		if attempt == 2 {
			t.Fatalf("redis-server did not start on %s", r.Addr)
		}
	}
	t.Cleanup(func() {
		r.cmd.Process.Kill() //nolint:errcheck // test teardown
		r.cmd.Wait()         //nolint:errcheck // reaped
	})
	opts := &goredis.Options{Addr: r.Addr}
	for i := 0; i < len(extra)-1; i++ {
		if extra[i] == "--requirepass" {
			opts.Password = extra[i+1]
		}
	}
	r.Client = goredis.NewClient(opts)
	t.Cleanup(func() { r.Client.Close() })
	return r
}

// RedisCluster is a private Redis Cluster started for one test.
type RedisCluster struct {
	Nodes  []*Redis // masters first, then replicas
	Client *goredis.ClusterClient
}

// NewRedisCluster starts masters*(1+replicas) cluster-enabled servers on
// loopback, joins them into one cluster (redis-cli --cluster create) and
// waits until every node reports the cluster healthy. A master that dies
// is replaced by its replica after two seconds (cluster-node-timeout).
func NewRedisCluster(t testing.TB, masters, replicas int) *RedisCluster {
	t.Helper()
	c := &RedisCluster{}
	var addrs []string
	for range masters * (1 + replicas) {
		n := NewRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
			"--appendonly", "no", "--repl-diskless-sync-delay", "0")
		c.Nodes = append(c.Nodes, n)
		addrs = append(addrs, n.Addr)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli is not installed: %v", err)
	}
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.Nodes {
		for {
			info, err := n.Client.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s did not become ok: %v %s", n.Addr, err, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// A replica that has not finished its first sync may not take over
	// from its master: wait for every one.
	for _, n := range c.Nodes {
		for {
			info, err := n.Client.Info(ctx, "replication").Result()
			if err == nil && (strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster replica %s did not sync: %v %s", n.Addr, err, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	c.Client = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { c.Client.Close() })
	return c
}

// Masters returns the nodes that are masters now.
func (c *RedisCluster) Masters(t testing.TB) []*Redis {
	t.Helper()
	var out []*Redis
	for _, n := range c.Nodes {
		if n.Exited() {
			continue
		}
		info, err := n.Client.Info(context.Background(), "replication").Result()
		if err == nil && strings.Contains(info, "role:master") {
			out = append(out, n)
		}
	}
	return out
}

// Kill stops the server at once, as a crash would.
func (r *Redis) Kill() {
	r.cmd.Process.Kill() //nolint:errcheck // a crash on purpose
	r.cmd.Wait()         //nolint:errcheck // reaped
	r.killed = true
}

// Exited reports whether Kill was called.
func (r *Redis) Exited() bool { return r.killed }
