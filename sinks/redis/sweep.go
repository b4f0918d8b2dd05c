package redis

import (
	"context"
	"fmt"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

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
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, "", 1000).Result()
			if err != nil {
				return fmt.Errorf("scan %s: %w", node.Options().Addr, err)
			}
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
			if len(page) > 0 {
				if err := fn(page); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	})
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
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, "", 1000).Result()
			if err != nil {
				return fmt.Errorf("sweep: scan %s: %w", node.Options().Addr, err)
			}
			var dels []pipeline.Event
			for _, k := range keys {
				if s.IsVersionKey(k) || !covers(k) {
					continue
				}
				dels = append(dels, pipeline.Event{Key: []byte(k), Op: pipeline.OpDelete, Origin: e.Origin, Version: e.Version})
			}
			if s.opts.SweepOwnedOnly {
				if dels, err = s.owned(ctx, node, dels); err != nil {
					return err
				}
			}
			if len(dels) > 0 {
				res, err := s.apply(ctx, dels, literalKey)
				if err != nil {
					return err
				}
				for _, r := range res {
					if r.Outcome == pipeline.Applied {
						swept.Add(1)
					}
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
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

// hasVersion says, for each key, whether its version key exists.
func (s *Sink) hasVersion(ctx context.Context, node *goredis.Client, keys []string) ([]bool, error) {
	has := make([]bool, len(keys))
	if len(keys) == 0 {
		return has, nil
	}
	cmds := make([]*goredis.IntCmd, len(keys))
	_, err := node.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Exists(ctx, s.VersionKey([]byte(k)))
		}
		return nil
	})
	if err != nil {
		return has, fmt.Errorf("read the version keys on %s: %w", node.Options().Addr, err)
	}
	for i, c := range cmds {
		has[i] = c.Val() > 0
	}
	return has, nil
}
