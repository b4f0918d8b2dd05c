package kafka

import (
	"sync/atomic"

	"github.com/cutover/cutover/pipeline"
)

// opCounters counts events by operation, concurrently.
type opCounters [pipeline.OpTruncate + 1]atomic.Int64

func (c *opCounters) add(op pipeline.Op, n int64) {
	if int(op) < len(c) {
		c[op].Add(n)
	}
}

func (c *opCounters) load() pipeline.OpCounts {
	return pipeline.OpCounts{Upserts: c[pipeline.OpUpsert].Load(), Deletes: c[pipeline.OpDelete].Load(), Truncates: c[pipeline.OpTruncate].Load()}
}
