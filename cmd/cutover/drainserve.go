package main

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline/kafka"
)

// serveDrains answers `cutover drain` while the source runs: it reads
// the control topic (created if missing) and has the publisher send
// barriers once the source has handed over what it saw. Without the
// control topic (cutover may not create topics) drains go unanswered,
// which is logged; replication itself goes on.
func (w *wiring) serveDrains(ctx context.Context, src kafka.DrainSource) {
	topic := kafka.ControlTopic(w.cfg.Kafka.Topic)
	st, err := kafka.EnsureControlTopic(ctx, w.pcl, w.cfg.Kafka.Topic, w.cfg.Kafka.ReplicationFactor)
	if err != nil {
		w.log.Warn("cutover drain will not be answered: the control topic is missing", "topic", topic, "err", err,
			"fix", "create it with one partition, and let cutover read it")
		return
	}
	if st.Created {
		w.log.Info("created topic", "topic", topic, "partitions", 1)
	}
	kcfg, err := w.kafkaConfig(ctx)
	if err != nil {
		w.log.Warn("cutover drain will not be answered", "err", err)
		return
	}
	from, err := kafka.ControlEnd(ctx, w.pcl, w.cfg.Kafka.Topic)
	var cl *kgo.Client
	if err == nil {
		cl, err = kafka.Connect(ctx, kcfg, kafka.ControlConsumerOpts(w.cfg.Kafka.Topic, from)...)
	}
	if err != nil {
		w.log.Warn("cutover drain will not be answered: reading the control topic failed", "topic", topic, "err", err)
		return
	}
	w.log.Info("answering cutover drain", "topic", topic)
	done := make(chan struct{})
	go func() {
		defer close(done)
		kafka.ServeDrains(ctx, cl, w.pub, src, w.log)
	}()
	// Closed with the rest; ServeDrains has returned by then (ctx ended).
	w.closers = append(w.closers, func() {
		<-done
		cl.Close()
	})
}
