package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/checkpoint"
)

// KeyPartitionsOptions say whose partition count KeyPartitions keeps.
type KeyPartitionsOptions struct {
	// Pipeline names the pipeline: the count is kept in the checkpoint
	// <Pipeline>/kafka/partitions.
	Pipeline string
	// Topic is the event topic, Group the sink workers' consumer group.
	Topic, Group string
	// KeepSaved is for a publisher that runs beside the source (reconcile's
	// repairs): it uses the saved count and never switches it. Only the
	// source may switch, when it starts: a source still running keeps
	// publishing with the old count for its life, and its events may be
	// unapplied when it restarts.
	KeepSaved bool
	// Logger is told when the count changes or is held back; default
	// slog.Default().
	Logger *slog.Logger
}

// KeyPartitions is how many partitions a publisher spreads keys over
// (PublisherOptions.Partitions), given that the topic has topic of them.
//
// A key's events must stay on one partition while any of them may still
// be unapplied there: after a topic grew, a restarted source would
// otherwise send a key's new events (a heal's re-read, its truncate) to
// another partition than its old ones, and an old upsert applied after
// the new partition's truncate would bring back a deleted key. So the
// count of earlier runs is kept in store until the sink group has
// applied everything on the topic; then the new count is used and saved.
// A topic with fewer partitions than the saved count is an error: keys
// cannot keep their partition. With KeepSaved the saved count is used
// as it is (and saved only when there is none).
func KeyPartitions(ctx context.Context, cl *kgo.Client, store checkpoint.Store, topic int32, opts KeyPartitionsOptions) (int32, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	name := opts.Pipeline + "/kafka/partitions"
	var saved struct {
		Partitions int32 `json:"partitions"`
	}
	raw, err := store.Load(ctx, name)
	switch {
	case errors.Is(err, checkpoint.ErrNotFound):
	case err != nil:
		return 0, err
	default:
		if err := json.Unmarshal(raw, &saved); err != nil {
			return 0, fmt.Errorf("checkpoint %s is corrupt: %w (delete it if the topic's consumers are caught up)", name, err)
		}
	}
	save := func(n int32) (int32, error) {
		raw, _ := json.Marshal(map[string]int32{"partitions": n})
		if err := store.Save(ctx, name, raw); err != nil {
			return 0, err
		}
		return n, nil
	}
	switch {
	case saved.Partitions == 0:
		return save(topic)
	case saved.Partitions == topic:
		return topic, nil
	case saved.Partitions > topic:
		return 0, fmt.Errorf("topic %s has %d partitions, fewer than the %d cutover sent keys to (was it deleted and created again?): "+
			"keys must keep their partition; if every sink has applied everything, delete checkpoint %s and start again",
			opts.Topic, topic, saved.Partitions, name)
	case opts.KeepSaved:
		return saved.Partitions, nil
	}
	end, err := EndOffsets(ctx, cl, opts.Topic)
	if err != nil {
		return 0, err
	}
	committed, err := CommittedOffsets(ctx, cl, opts.Group, opts.Topic)
	if err != nil {
		return 0, err
	}
	for p, off := range end {
		if committed[p] < off {
			log.Warn("the topic has more partitions than cutover sends keys to; it keeps to the first ones until the sink group has applied everything on them: restart cutover then to use all",
				"topic", opts.Topic, "partitions", topic, "used", saved.Partitions, "group", opts.Group)
			return saved.Partitions, nil
		}
	}
	log.Info("the topic grew and its consumers are caught up: keys are spread over every partition from now on",
		"topic", opts.Topic, "from", saved.Partitions, "to", topic)
	return save(topic)
}
