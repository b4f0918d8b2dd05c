package redis

import (
	"context"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
)

// NotifyCheck is what CheckNotifications found.
type NotifyCheck struct {
	// Flags is the server's notify-keyspace-events.
	Flags string
	// Missing are the classes live capture needs that Flags lacks.
	Missing string
	// CanSet is set when the user may CONFIG SET them.
	CanSet bool
	// Err says what to set when live capture cannot turn them on.
	Err error
}

// CheckNotifications is EnsureNotifications without changing anything,
// for `cutover plan`: it reads notify-keyspace-events and, when classes
// are missing, finds out whether the user may set them: ACL DRYRUN when
// the user may run it (Redis 7), else a CONFIG SET of the value the
// server already has, which changes nothing but is refused exactly when
// the real one would be.
func CheckNotifications(ctx context.Context, cl *goredis.Client, conn redisconn.Conn) NotifyCheck {
	cur, err := cl.ConfigGet(ctx, "notify-keyspace-events").Result()
	if err != nil {
		if isConfigRefused(err) {
			return NotifyCheck{Err: notifyErr(conn, "", err)}
		}
		return NotifyCheck{Err: redisconn.Explain(conn, err)}
	}
	c := NotifyCheck{Flags: cur["notify-keyspace-events"]}
	if c.Missing = missingNotifyFlags(c.Flags); c.Missing == "" {
		return c
	}
	want := mergeFlags(c.Flags, c.Missing)
	res, err := cl.Do(ctx, "ACL", "DRYRUN", conn.User(), "CONFIG", "SET", "notify-keyspace-events", want).Text()
	switch {
	case err == nil && res == "OK":
		c.CanSet = true
	case err == nil:
		// DRYRUN answers a refusal as a plain string that says why.
		c.Err = notifyErr(conn, c.Flags, fmt.Errorf("%s", strings.TrimSpace(res)))
	default:
		if err := cl.ConfigSet(ctx, "notify-keyspace-events", c.Flags).Err(); err != nil {
			c.Err = notifyErr(conn, c.Flags, err)
		} else {
			c.CanSet = true
		}
	}
	return c
}

// Probe reads key once as the snapshot does, without retrying, for
// `cutover plan`: the read script calls TIME, TYPE, PTTL and the type's
// read commands, and a user refused any of them is told now rather than
// after two minutes of retries. A key the user may not read (an ACL key
// pattern) is not a failure here: the sample counts such keys.
func (r *Reader) Probe(ctx context.Context, key string) error {
	if err := r.Prepare(ctx); err != nil {
		return err
	}
	err := r.evalRead(ctx, r.cl, key).Err()
	if err == nil || isKeyForbidden(err) || isElsewhere(err) {
		return nil
	}
	return redisconn.Explain(r.conn, err)
}

// Preflight checks, read-only, what a snapshot and live capture need of
// every server of the source, for `cutover plan`: that it answers, that
// its keyspace notifications are on or the user may turn them on (see
// CheckNotifications), and that one of its keys reads as the snapshot
// reads it (see Node.ProbeRead). It stops at the first server it cannot
// read; readable is false then, and a sample would fail.
func (t *Topology) Preflight(ctx context.Context, opts ReaderOptions) (checks []pipeline.Check, readable bool) {
	shards, err := t.Shards(ctx)
	if err != nil {
		return []pipeline.Check{pipeline.Failed("source redis", err)}, false
	}
	checks = append(checks, pipeline.Passed("source redis", fmt.Sprintf("%s db %d reachable (%d node(s))", t.Conn.Addr, t.Conn.DB, len(shards))))
	for _, sh := range shards {
		node, err := t.Open(ctx, sh)
		if err != nil {
			return append(checks, pipeline.Failed("source redis "+sh.Addr, err)), false
		}
		checks = append(checks, node.notifyCheck(ctx))
		read := node.readCheck(ctx, opts)
		node.Close()
		checks = append(checks, read)
		if read.Err != nil {
			return checks, false
		}
	}
	return checks, true
}

// notifyCheck is CheckNotifications as a preflight step: replicate turns
// the missing classes on itself when the user may.
func (n *Node) notifyCheck(ctx context.Context) pipeline.Check {
	name := "keyspace notifications " + n.Conn.Addr
	c := CheckNotifications(ctx, n.Client, n.Conn)
	switch {
	case c.Err != nil:
		return pipeline.Failed(name, fmt.Errorf("%w (backfill works without them; replicate needs them)", c.Err))
	case c.Missing == "":
		return pipeline.Passed(name, fmt.Sprintf("notify-keyspace-events is %q", c.Flags))
	default:
		return pipeline.Passed(name, fmt.Sprintf("notify-keyspace-events is %q; replicate will add %q with CONFIG SET (the user may)", c.Flags, c.Missing))
	}
}

// readCheck is ProbeRead as a preflight step.
func (n *Node) readCheck(ctx context.Context, opts ReaderOptions) pipeline.Check {
	name := "source read " + n.Conn.Addr
	empty, err := n.ProbeRead(ctx, opts)
	switch {
	case err != nil:
		return pipeline.Failed(name, err)
	case empty:
		return pipeline.Passed(name, "the database is empty")
	default:
		return pipeline.Passed(name, "a key read as the snapshot reads it")
	}
}
