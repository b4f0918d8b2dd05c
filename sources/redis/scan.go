package redis

import (
	"context"
	"fmt"
	"log/slog"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
)

// scanPage is one SCAN call: the keys that pass the filter, the next
// cursor, and how many keys SCAN returned in all. The snapshot, a heal
// and reconcile's Scanner (reconcile.go) all walk a node with it.
func scanPage(ctx context.Context, cl *goredis.Client, conn redisconn.Conn, log *slog.Logger, f pipeline.KeyFilter, types []pipeline.Type,
	cursor uint64, count int) (kept []string, next uint64, returned int, err error) {
	match := f.ScanMatch()
	var keys []string
	err = retryRead(ctx, log, "scan", func() error {
		var err error
		if len(types) == 1 {
			keys, next, err = cl.ScanType(ctx, cursor, match, int64(count), types[0].String()).Result()
		} else {
			keys, next, err = cl.Scan(ctx, cursor, match, int64(count)).Result()
		}
		return err
	})
	if err != nil {
		return nil, 0, 0, fmt.Errorf("scan at cursor %d: %w", cursor, redisconn.Explain(conn, err))
	}
	kept = keys[:0]
	for _, k := range keys {
		if f.Keep(k) {
			kept = append(kept, k)
		}
	}
	return kept, next, len(keys), nil
}
