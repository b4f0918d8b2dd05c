package redis

import (
	"context"
	"fmt"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
)

// sweep applies a truncate event: every data key the event's scope covers
// and whose version is older than the event's is deleted (and gets a
// tombstone with the event's version). The version check happens in the
// apply script, atomically per key, so a key written with a newer version
// while the sweep runs is left alone.
func (s *Sink) sweep(ctx context.Context, e *pipeline.Event) (int64, error) {
	var swept atomic.Int64
	scan := func(ctx context.Context, node *goredis.Client) error {
		var cursor uint64
		for {
			keys, next, err := node.Scan(ctx, cursor, "", 1000).Result()
			if err != nil {
				return fmt.Errorf("sweep: scan %s: %w", node.Options().Addr, err)
			}
			var dels []pipeline.Event
			for _, k := range keys {
				if s.IsVersionKey(k) || !e.Scope.Covers([]byte(k)) {
					continue
				}
				dels = append(dels, pipeline.Event{Key: []byte(k), Op: pipeline.OpDelete, Origin: e.Origin, Version: e.Version})
			}
			if len(dels) > 0 {
				res, err := s.Apply(ctx, dels)
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
	var err error
	switch c := s.cl.(type) {
	case *goredis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *goredis.Client:
		err = scan(ctx, c)
	default:
		err = fmt.Errorf("sweep: unsupported client %T", s.cl)
	}
	s.swept.Add(swept.Load())
	return swept.Load(), err
}
