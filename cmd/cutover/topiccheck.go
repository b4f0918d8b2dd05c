package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/pipeline/kafka"
)

// checkTombstones refuses to start a sink whose tombstones expire before
// the topic forgets its events: a replay from the topic's oldest events
// could then reach a deleted key after its tombstone is gone and bring it
// back. --allow-short-tombstones accepts that risk.
func (w *wiring) checkTombstones(ctx context.Context, cl *kgo.Client) error {
	keep, flag := w.cfg.Sink.Redis.TombstoneRetention, "--target-redis-tombstone-retention (sink.redis.tombstone_retention)"
	if w.cfg.HasDynamoDBSink() {
		keep, flag = w.cfg.Sink.DynamoDB.TombstoneRetention, "--tombstone-retention (sink.dynamodb.tombstone_retention)"
	}
	info, err := kafka.DescribeTopic(ctx, cl, w.cfg.Kafka.Topic)
	if err != nil {
		w.log.Warn("could not compare the tombstones' retention with the topic's", "topic", w.cfg.Kafka.Topic, "err", err)
		return nil
	}
	if info.Retention >= 0 && keep >= info.Retention {
		return nil
	}
	retention := "forever"
	if info.Retention >= 0 {
		retention = info.Retention.String()
	}
	if w.cfg.Kafka.AllowShortTombstones {
		w.log.Warn("tombstones expire before the topic's events (--allow-short-tombstones): a replay from further back than the tombstones can bring a deleted key back",
			"tombstone_retention", keep, "topic_retention", retention)
		return nil
	}
	return &config.Error{Problems: []string{fmt.Sprintf(
		"tombstones are kept %s but topic %s keeps events %s: a replay of older events could bring a deleted key back after its tombstone expired. "+
			"Raise %s to at least the topic's retention.ms, lower the topic's retention.ms, or accept the risk with --allow-short-tombstones",
		round(keep), w.cfg.Kafka.Topic, retention, flag)}}
}

func round(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}
