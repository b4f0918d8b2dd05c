package main

import (
	"context"

	"github.com/cutover/cutover/pipeline/kafka"
)

// serveDrains answers `cutover drain` while the source runs. Without the
// control topic (cutover may not create topics) drains go unanswered,
// which is logged; replication itself goes on.
func (w *wiring) serveDrains(ctx context.Context, src kafka.DrainSource) {
	kcfg, err := w.kafkaConfig(ctx)
	if err != nil {
		w.log.Warn("cutover drain will not be answered", "err", err)
		return
	}
	wait := kafka.StartDrainServer(ctx, w.pcl, kcfg, w.pub, src, kafka.DrainServerOptions{
		Topic: w.cfg.Kafka.Topic, ReplicationFactor: w.cfg.Kafka.ReplicationFactor, Logger: w.log})
	if wait != nil {
		// Closed with the rest; serving has stopped by then (ctx ended).
		w.closers = append(w.closers, wait)
	}
}
