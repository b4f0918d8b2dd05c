// Package stack gives end-to-end tests the real local services: the Kafka
// broker and DynamoDB Local that deploy/local/stack starts (make test does),
// and private redis-server processes that a test starts and stops itself.
//
// A missing service fails the test with a message saying how to start it;
// it never skips, because in CI a skip would hide a broken install step.
// All traffic stays on 127.0.0.1.
package stack

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// KafkaBrokers returns the broker of the local stack, failing t if it
// does not accept connections.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	addr := env("CUTOVER_KAFKA_BROKERS", "127.0.0.1:"+env("CUTOVER_KAFKA_PORT", "19092"))
	mustDial(t, "Kafka", addr)
	return strings.Split(addr, ",")
}

// DynamoDBEndpoint returns the DynamoDB Local endpoint of the local stack,
// failing t if it does not answer.
func DynamoDBEndpoint(t testing.TB) string {
	t.Helper()
	ep := env("CUTOVER_DYNAMODB_ENDPOINT", "http://127.0.0.1:"+env("CUTOVER_DYNAMODB_PORT", "18000"))
	mustDial(t, "DynamoDB Local", strings.TrimPrefix(ep, "http://"))
	return ep
}

// LocalAWSEnv is the environment every cutover process of a test gets:
// credentials DynamoDB Local accepts, no shared AWS config, and no EC2
// metadata lookup, so no test ever leaves loopback looking for credentials.
var LocalAWSEnv = []string{
	"AWS_ACCESS_KEY_ID=local",
	"AWS_SECRET_ACCESS_KEY=local",
	"AWS_SESSION_TOKEN=",
	"AWS_PROFILE=",
	"AWS_REGION=us-east-1",
	"AWS_EC2_METADATA_DISABLED=true",
	"AWS_CONFIG_FILE=/dev/null",
	"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
}

func mustDial(t testing.TB, what, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("%s is not reachable at %s: %v\nstart the local stack with `deploy/local/stack up` (make test does this)", what, addr, err)
	}
	c.Close()
}

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

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ClosedAddr returns a loopback address nothing listens on.
func ClosedAddr(t testing.TB) string {
	return "127.0.0.1:" + strconv.Itoa(freePort(t))
}

func waitPort(addr string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/cutover once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "cutover-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "cutover")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/cutover")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/cutover: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Result is the outcome of running the binary.
type Result struct {
	Code   int
	Stdout string
	Stderr string
}

// Run runs the binary with args until it exits or ctx ends.
func Run(ctx context.Context, t testing.TB, args ...string) Result {
	t.Helper()
	return RunEnv(ctx, t, nil, args...)
}

// RunEnv is Run with extra environment variables (NAME=value), which win
// over the process' own and LocalAWSEnv.
func RunEnv(ctx context.Context, t testing.TB, env []string, args ...string) Result {
	t.Helper()
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Env = append(append(append(os.Environ(), LocalAWSEnv...), env...), "NO_COLOR=1")
	// A run that outlives the test's deadline dumps its goroutines
	// (SIGQUIT) into stderr, so a hang is diagnosable from the failure.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok { //nolint:errorlint // exec returns it unwrapped
		res.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run cutover %v: %v", args, err)
	}
	return res
}

// Unique returns a name no other test run uses: a Kafka topic, a table.
func Unique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano()%1_000_000_000)
}

// Proc is the binary running in the background.
type Proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout strings.Builder
	stderr strings.Builder
	done   chan struct{}
	code   int
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Start runs the binary in the background. The test's cleanup kills it if
// it still runs.
func Start(t testing.TB, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{done: make(chan struct{})}
	p.cmd = exec.Command(Binary(t), args...)
	p.cmd.Env = append(append(append(os.Environ(), LocalAWSEnv...), env...), "NO_COLOR=1")
	p.cmd.Stdout = lockedWriter{&p.mu, &p.stdout}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start cutover %v: %v", args, err)
	}
	go func() {
		err := p.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok { //nolint:errorlint // exec returns it unwrapped
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Stop sends SIGTERM and waits up to a minute for the process to exit; it
// returns the exit code (-1 if it had to be killed).
func (p *Proc) Stop() int {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.code
	case <-time.After(time.Minute):
		p.Kill()
		return -1
	}
}

// Wait waits up to within for the process to exit on its own and
// returns its exit code, failing t if it does not.
func (p *Proc) Wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(within):
		p.Kill()
		t.Fatalf("the process did not exit within %v", within)
		return -1
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig to the process: SIGSTOP freezes it, SIGCONT lets it
// go on.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// PeakRSS samples the process' resident memory every 50ms until it exits
// and returns the largest sample, in bytes.
func (p *Proc) PeakRSS() int64 {
	var peak int64
	for !p.Exited() {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
		if err == nil {
			for _, line := range strings.Split(string(raw), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
					if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb*1024 > peak {
						peak = kb * 1024
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return peak
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns what the process printed so far.
func (p *Proc) Output() (stdout, stderr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String(), p.stderr.String()
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

// TLSFiles are a test CA and a server certificate it signed for 127.0.0.1.
type TLSFiles struct {
	CA, Cert, Key string
}

// NewTLSFiles writes a fresh CA and server certificate to a temp dir.
func NewTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cutover test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	f := TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	for path, block := range map[string]*pem.Block{f.CA: {Type: "CERTIFICATE", Bytes: caDER}, f.Cert: {Type: "CERTIFICATE", Bytes: srvDER},
		f.Key: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// NewRedisTLS starts a redis-server that only speaks TLS, with the
// certificates of f.
func NewRedisTLS(t testing.TB, f TLSFiles, extra ...string) *Redis {
	t.Helper()
	r := NewRedis(t, append([]string{"--tls-port", "0", "--tls-cert-file", f.Cert, "--tls-key-file", f.Key,
		"--tls-ca-cert-file", f.CA, "--tls-auth-clients", "no"}, extra...)...)
	// Swap the plain port for a TLS one: stop, restart with --port 0.
	r.cmd.Process.Kill() //nolint:errcheck // restarted below
	r.cmd.Wait()         //nolint:errcheck // reaped
	port := r.Addr[strings.LastIndexByte(r.Addr, ':')+1:]
	for i, a := range r.args {
		if a == "--port" {
			r.args[i+1] = "0"
		}
		if a == "--tls-port" {
			r.args[i+1] = port
		}
	}
	r.cmd = r.command()
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitPort(r.Addr, 5*time.Second) {
		t.Fatalf("TLS redis-server did not start on %s", r.Addr)
	}
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(ca)
	r.Client = goredis.NewClient(&goredis.Options{Addr: r.Addr, TLSConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	t.Cleanup(func() { r.Client.Close() })
	return r
}

// KafkaSASLUser and KafkaSASLPassword are the SCRAM user KafkaSASL
// creates (and the PLAIN user the stack configures).
const (
	KafkaSASLUser     = "cutover"
	KafkaSASLPassword = "cutover-local-secret"
)

// KafkaSASL returns the local stack's TLS + SASL listener and the CA file
// that verifies its certificate, after creating (or updating) the SCRAM
// user KafkaSASLUser for both SCRAM mechanisms over the plain listener.
func KafkaSASL(t testing.TB) (brokers []string, caFile string) {
	t.Helper()
	addr := env("CUTOVER_KAFKA_SASL_BROKERS", "127.0.0.1:"+env("CUTOVER_KAFKA_SASL_PORT", "19094"))
	if c, err := net.DialTimeout("tcp", addr, 3*time.Second); err != nil {
		t.Fatalf("Kafka's SASL_SSL listener is not reachable at %s: %v\n"+
			"a Kafka started by an older local stack lacks it: `deploy/local/stack down kafka && deploy/local/stack up kafka`", addr, err)
	} else {
		c.Close()
	}
	// deploy/local/stack keeps the CA in the cache directory, shared by
	// every checkout (a second clone reuses the first one's broker).
	cache := os.Getenv("CUTOVER_CACHE_DIR")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			t.Fatalf("the local stack's cache directory: %v", err)
		}
		cache = filepath.Join(base, "cutover")
	}
	caFile = env("CUTOVER_KAFKA_CA_FILE", filepath.Join(cache, "kafka-tls", "ca.pem"))
	if _, err := os.Stat(caFile); err != nil {
		t.Fatalf("the local stack's Kafka CA: %v\na Kafka started by an older local stack keeps its CA elsewhere: restart it (deploy/local/stack down kafka && deploy/local/stack up kafka)", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(KafkaBrokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One mechanism per call: a user may appear once per request.
	for _, m := range []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512} {
		res, err := kadm.NewClient(cl).AlterUserSCRAMs(ctx, nil,
			[]kadm.UpsertSCRAM{{User: KafkaSASLUser, Mechanism: m, Iterations: 4096, Password: KafkaSASLPassword}})
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			t.Fatalf("create the SCRAM user %s (%v): %v", KafkaSASLUser, m, err)
		}
	}
	return []string{addr}, caFile
}
