package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Conn says how to reach one Redis server.
type Conn struct {
	// Addr is host:port.
	Addr string
	// Username is the ACL user; empty means "default".
	Username string
	// Password of the user; never logged.
	Password string
	// DB is the logical database, 0 to 15 by default.
	DB int
	// PoolSize bounds connections; default 10.
	PoolSize int
	// TLS, when set, makes every connection use TLS with this config.
	TLS *tls.Config
	// AddrFlag and PasswordFlag are the flags that set Addr and Password,
	// named in error messages; default --redis-addr and --redis-password.
	AddrFlag, PasswordFlag string
}

func (c Conn) flags() (addr, user, pass, env string) {
	addr, pass = c.AddrFlag, c.PasswordFlag
	if addr == "" {
		addr = "--redis-addr"
	}
	if pass == "" {
		pass = "--redis-password"
	}
	user = strings.TrimSuffix(pass, "-password") + "-username"
	env = "REDIS_PASSWORD"
	if strings.HasPrefix(pass, "--target-") {
		env = "TARGET_REDIS_PASSWORD"
	}
	return addr, user, pass, env
}

// User is the ACL user the connection logs in as.
func (c Conn) User() string {
	if c.Username == "" {
		return "default"
	}
	return c.Username
}

// Options are go-redis's options for a client of the server: timeouts
// that suit cutover's calls, and go-redis's own retries off (its caller
// owns the retries, docs/DESIGN.md §7).
func (c Conn) Options() *goredis.Options {
	pool := c.PoolSize
	if pool <= 0 {
		pool = 10
	}
	return &goredis.Options{
		Addr:                  c.Addr,
		Username:              c.Username,
		Password:              c.Password,
		DB:                    c.DB,
		TLSConfig:             c.TLS,
		PoolSize:              pool,
		DialTimeout:           5 * time.Second,
		ReadTimeout:           30 * time.Second, // a read script on a large key can take a while
		WriteTimeout:          10 * time.Second,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true, // CLIENT SETINFO is refused by some managed Redis
		// One retry owner: the snapshot retries whole pages; go-redis
		// retrying each command as well would multiply the attempts.
		MaxRetries: -1,
	}
}

// Connect opens a client and checks the server answers and accepts the
// credentials, so that a wrong address or password fails at start with an
// error that says what to check.
func Connect(ctx context.Context, c Conn) (*goredis.Client, error) {
	if c.Addr == "" {
		return nil, fmt.Errorf("redis: no address configured (set --redis-addr or source.redis.addr)")
	}
	cl := goredis.NewClient(c.Options())
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := cl.Ping(pingCtx).Err(); err != nil {
		cl.Close() //nolint:gosec // the ping error is the one to report
		return nil, Explain(c, err)
	}
	return cl, nil
}

// Explain turns a Redis error into one that names the server and says what
// to do. Errors it does not recognise come back wrapped with the address.
func Explain(c Conn, err error) error {
	user := c.User()
	addrFlag, userFlag, passFlag, env := c.flags()
	msg := err.Error()
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case strings.HasPrefix(msg, "WRONGPASS"), strings.Contains(msg, "invalid username-password"):
		return fmt.Errorf("redis %s rejected the credentials of user %q: %w (check %s and the password in %s or %s)", c.Addr, user, err, userFlag, passFlag, env)
	case strings.HasPrefix(msg, "NOAUTH"):
		return fmt.Errorf("redis %s requires a password: %w (set %s or %s)", c.Addr, err, passFlag, env)
	case strings.Contains(msg, "without any password configured"), strings.Contains(msg, "called without any password"):
		return fmt.Errorf("redis %s has no password set but one was given: %w (remove %s)", c.Addr, err, passFlag)
	case strings.HasPrefix(msg, "NOPERM"):
		return fmt.Errorf("redis %s: user %q lacks a permission cutover needs: %w (grant it: +@read +@keyspace +@scripting +@pubsub +ping +info +time +memory +config|get +config|set +cluster|slots ~* &__keyevent@<db>__:* — see docs/redis.md)", c.Addr, user, err)
	case strings.HasPrefix(msg, "ERR DB index is out of range"), strings.HasPrefix(msg, "ERR invalid DB index"):
		return fmt.Errorf("redis %s has no database %d: %w (check %s)", c.Addr, c.DB, err, strings.TrimSuffix(addrFlag, "-addr")+"-db")
	case strings.Contains(msg, "certificate") || strings.Contains(msg, "tls:") || strings.Contains(msg, "x509"):
		return fmt.Errorf("redis %s: TLS handshake failed: %w (check the CA file, the client certificate and the server name)", c.Addr, err)
	case c.TLS == nil && (errors.Is(err, io.EOF) || strings.Contains(msg, "connection reset")):
		return fmt.Errorf("redis %s closed the connection at once: %w (does it expect TLS? then set %s)", c.Addr, err,
			strings.TrimSuffix(addrFlag, "-addr")+"-tls")
	case errors.As(err, &opErr), errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("redis %s unreachable: %w (check %s and that Redis is running and reachable)", c.Addr, err, addrFlag)
	}
	return fmt.Errorf("redis %s: %w", c.Addr, err)
}
