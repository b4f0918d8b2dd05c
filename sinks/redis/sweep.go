package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/retry"
	"github.com/cutover/cutover/pipeline"
)

// ListKeys calls fn with every data key of the target (not the sink's
// version keys), a page at a time: reconcile uses it to find keys the
// source no longer has. With Items, a key the template can parse is given
// as its item key (the event key); others as they are. With
// SweepOwnedOnly, only the keys this pipeline wrote: the others are the
// target's own, not keys the source lost.
func (s *Sink) ListKeys(ctx context.Context, fn func(keys [][]byte) error) error {
	return s.eachNode(ctx, func(ctx context.Context, node *goredis.Client) error {
		return s.scanStable(ctx, node, false, func(keys []string) error {
			var err error
			if s.opts.SweepOwnedOnly {
				if keys, err = s.ownedKeys(ctx, node, keys); err != nil {
					return err
				}
			}
			page := make([][]byte, 0, len(keys))
			for _, k := range keys {
				if s.IsVersionKey(k) {
					continue
				}
				if s.opts.Items != nil {
					if ik, ok := s.opts.Items.parseKey(k); ok {
						page = append(page, ik)
						continue
					}
				}
				page = append(page, []byte(k))
			}
			if len(page) == 0 {
				return nil
			}
			return fn(page)
		})
	})
}

// scanStable calls page with node's keys, a SCAN page at a time, all on
// one connection. A SCAN cursor means something only to the server that
// gave it, with the data it had then: if the server behind the client
// changed during the walk (a failover the client followed, a restart it
// reconnected to, a demoted master resynchronised), pages after that may
// have missed keys. With restart (the caller's work is idempotent), the
// walk then starts over, as it does after a lost connection; without, it
// fails with an error that says to run again.
func (s *Sink) scanStable(ctx context.Context, node *goredis.Client, restart bool, page func(keys []string) error) error {
	bo := retry.New(0, retry.Initial(100*time.Millisecond), retry.Max(5*time.Second))
	for {
		err := s.scanOnce(ctx, node, page)
		if err == nil || !restart || ctx.Err() != nil || !errors.Is(err, errServerChanged) && !isTransient(err) {
			return err
		}
		s.retries.Add(1)
		wait := bo.NextBackOff()
		s.log.Warn("scanning the target again from the start", "addr", s.opts.Addr, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// errServerChanged: the server answering a walk of the keys changed.
var errServerChanged = errors.New("the target server changed during the walk of its keys (a failover or a restart): keys may have been missed")

func (s *Sink) scanOnce(ctx context.Context, node *goredis.Client, page func(keys []string) error) error {
	conn := node.Conn()
	defer conn.Close() // returns the connection to the pool
	before, err := serverIdentity(ctx, conn)
	if err != nil {
		return fmt.Errorf("scan %s: %w", node.Options().Addr, err)
	}
	var cursor uint64
	for {
		keys, next, err := conn.Scan(ctx, cursor, "", 1000).Result()
		if err != nil {
			return fmt.Errorf("scan %s: %w", node.Options().Addr, err)
		}
		if err := page(keys); err != nil {
			return err
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	after, err := serverIdentity(ctx, conn)
	if err != nil {
		return fmt.Errorf("scan %s: %w", node.Options().Addr, err)
	}
	if after != before {
		return fmt.Errorf("%w (%s, then %s)", errServerChanged, before, after)
	}
	return nil
}

// serverIdentity names the server process and its data set: its run_id
// and replication ID (which changes when it is promoted or resynchronises
// from another master).
func serverIdentity(ctx context.Context, c goredis.Cmdable) (string, error) {
	var id []string
	for _, f := range []struct{ section, field string }{{"server", "run_id"}, {"replication", "master_replid"}} {
		info, err := c.Info(ctx, f.section).Result()
		if err != nil {
			return "", err
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), f.field+":"); ok {
				id = append(id, v)
			}
		}
	}
	return strings.Join(id, "/"), nil
}

// eachNode runs f on the single server, or on every master of a cluster.
func (s *Sink) eachNode(ctx context.Context, f func(context.Context, *goredis.Client) error) error {
	switch c := s.cl.(type) {
	case *goredis.ClusterClient:
		return c.ForEachMaster(ctx, f)
	case *goredis.Client:
		return f(ctx, c)
	default:
		return fmt.Errorf("unsupported client %T", s.cl)
	}
}

// sweep applies a truncate event: every data key the event's scope covers
// and whose version is older than the event's is deleted (and gets a
// tombstone with the event's version). The version check happens in the
// apply script, atomically per key, so a key written with a newer version
// while the sweep runs is left alone.
func (s *Sink) sweep(ctx context.Context, e *pipeline.Event) (int64, error) {
	var swept atomic.Int64
	scope := *e.Scope
	// covers says whether the truncate covers a target key. With Items the
	// scope is about item keys: a Redis key is read back into its item key
	// with the template (one-to-one), and a key the template does not give
	// back is not this pipeline's — another pipeline's, or the
	// application's — and is left alone.
	covers := func(k string) bool { return scope.Covers([]byte(k)) }
	if s.opts.Items != nil {
		covers = func(k string) bool {
			item, ok := s.opts.Items.parseKey(k)
			return ok && scope.Covers(item)
		}
	}
	scan := func(ctx context.Context, node *goredis.Client) error {
		// A walk cut by a failover starts over: its deletes are versioned,
		// so deleting again changes nothing, and a key its first walk
		// missed is not left behind.
		return s.scanStable(ctx, node, true, func(keys []string) error {
			var dels []pipeline.Event
			for _, k := range keys {
				if s.IsVersionKey(k) || !covers(k) {
					continue
				}
				dels = append(dels, pipeline.Event{Key: []byte(k), Op: pipeline.OpDelete, Origin: e.Origin, Version: e.Version})
			}
			var err error
			if s.opts.SweepOwnedOnly {
				if dels, err = s.owned(ctx, node, dels); err != nil {
					return err
				}
			}
			if len(dels) == 0 {
				return nil
			}
			res, err := s.apply(ctx, dels, literalKey)
			if err != nil {
				return err
			}
			for _, r := range res {
				if r.Outcome == pipeline.Applied {
					swept.Add(1)
				}
			}
			return nil
		})
	}
	err := s.eachNode(ctx, scan)
	s.swept.Add(swept.Load())
	return swept.Load(), err
}

// owned keeps the deletes of keys that have a version key: keys this
// pipeline wrote. A key that gets its version key after the check was
// written by the pipeline meanwhile, at a version the sweep's apply
// compares with, so skipping it loses nothing.
func (s *Sink) owned(ctx context.Context, node *goredis.Client, dels []pipeline.Event) ([]pipeline.Event, error) {
	keys := make([]string, len(dels))
	for i := range dels {
		keys[i] = string(dels[i].Key)
	}
	has, err := s.hasVersion(ctx, node, keys)
	kept := dels[:0]
	for i := range dels {
		if has[i] {
			kept = append(kept, dels[i])
		}
	}
	return kept, err
}

// ownedKeys keeps the data keys that have a version key.
func (s *Sink) ownedKeys(ctx context.Context, node *goredis.Client, keys []string) ([]string, error) {
	has, err := s.hasVersion(ctx, node, keys)
	kept := keys[:0]
	for i, k := range keys {
		if has[i] && !s.IsVersionKey(k) {
			kept = append(kept, k)
		}
	}
	return kept, err
}

// hasVersion says, for each key, whether the target holds a version for
// it (one past its deadline does not count).
func (s *Sink) hasVersion(ctx context.Context, node *goredis.Client, keys []string) ([]bool, error) {
	has := make([]bool, len(keys))
	vs, err := s.versionsOn(ctx, node, keys)
	if err != nil {
		return has, fmt.Errorf("read the versions on %s: %w", node.Options().Addr, err)
	}
	for i, v := range vs {
		has[i] = v != nil
	}
	return has, nil
}
