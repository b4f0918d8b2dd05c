// Package sources holds cutover's source connectors, one package per store:
// sources/redis reads Redis, sources/dynamodb reads DynamoDB. A source
// reads keys, turns them into pipeline.Events and hands them to a
// publisher; it never writes to a target.
package sources

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx ends; it reports whether the whole wait
// passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
