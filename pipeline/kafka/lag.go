package kafka

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PartitionLag is a consumer group's position in one partition.
type PartitionLag struct {
	Partition int32
	// End is the partition's end offset.
	End int64
	// Committed is the group's committed offset; -1 for none.
	Committed int64
	// Lag is how many records the group has still to commit to reach
	// End: all of them when it committed none.
	Lag int64
}

// GroupLag is group's position in every partition of topic, in partition
// order. A topic that does not exist yet (the pipeline never published)
// has no partitions.
func GroupLag(ctx context.Context, cl *kgo.Client, group, topic string) ([]PartitionLag, error) {
	end, err := offsetsIfAny(EndOffsets(ctx, cl, topic))
	if err != nil {
		return nil, err
	}
	committed, err := CommittedOffsets(ctx, cl, group, topic)
	if err != nil {
		return nil, err
	}
	out := make([]PartitionLag, 0, len(end))
	for _, p := range slices.Sorted(maps.Keys(end)) {
		c, ok := committed[p]
		pl := PartitionLag{Partition: p, End: end[p], Committed: c}
		if !ok {
			pl.Committed = -1
			c = 0
		}
		pl.Lag = max(0, end[p]-c)
		out = append(out, pl)
	}
	return out, nil
}

// HeldRecords is how many records topic holds now (between its start and
// end offsets): a dead-letter topic's count of dead letters. A topic that
// does not exist holds none.
func HeldRecords(ctx context.Context, cl *kgo.Client, topic string) (int64, error) {
	end, err := offsetsIfAny(EndOffsets(ctx, cl, topic))
	if err != nil {
		return 0, err
	}
	start, err := offsetsIfAny(StartOffsets(ctx, cl, topic))
	if err != nil {
		return 0, err
	}
	var n int64
	for p, e := range end {
		n += e - start[p]
	}
	return n, nil
}

// offsetsIfAny treats a topic that does not exist yet (the pipeline never
// ran) as one without records.
func offsetsIfAny(offsets map[int32]int64, err error) (map[int32]int64, error) {
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return map[int32]int64{}, nil
	}
	return offsets, err
}
