package kafka

import (
	"context"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// WaitCommitted blocks until group has committed at least end on every
// partition of topic, looking every interval, and returns nil. Before
// each look it calls poll, when set (to start a consumer when the group
// has none, or to notice that one stopped): an error from poll ends the
// wait with it. When ctx ends first it returns the partitions still
// behind at the last look (their end offsets) and ctx's error.
func WaitCommitted(ctx context.Context, cl *kgo.Client, group, topic string, end map[int32]int64, interval time.Duration,
	poll func(ctx context.Context) error,
) (map[int32]int64, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	behind := maps.Clone(end)
	for {
		if poll != nil {
			if err := poll(ctx); err != nil {
				return behind, err
			}
		}
		committed, err := CommittedOffsets(ctx, cl, group, topic)
		if err != nil {
			return behind, err
		}
		behind = maps.Clone(end)
		for p, off := range end {
			if committed[p] >= off {
				delete(behind, p)
			}
		}
		if len(behind) == 0 {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return behind, ctx.Err()
		case <-t.C:
		}
	}
}
