package kafka

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DrainServerOptions configure StartDrainServer.
type DrainServerOptions struct {
	// Topic is the event topic; its control topic carries the requests.
	Topic string
	// ReplicationFactor of the control topic, if it is created; -1 takes
	// the cluster's default.
	ReplicationFactor int16
	// Logger receives why drains go unanswered, and the lifecycle.
	Logger *slog.Logger
}

// StartDrainServer answers `cutover drain` while a source runs, in the
// background until ctx ends: it creates the control topic if missing
// (with admin), reads it from its end with a client of its own (cfg) and
// serves the requests with ServeDrains. Drains going unanswered does not
// stop replication, so a problem is logged, not returned, and wait is
// nil. Otherwise wait returns once serving stopped (ctx ended), closing
// its client.
func StartDrainServer(ctx context.Context, admin *kgo.Client, cfg Config, pub Barrierer, src DrainSource, opts DrainServerOptions) (wait func()) {
	log, topic := opts.Logger, ControlTopic(opts.Topic)
	st, err := EnsureControlTopic(ctx, admin, opts.Topic, opts.ReplicationFactor)
	if err != nil {
		log.Warn("cutover drain will not be answered: the control topic is missing", "topic", topic, "err", err,
			"fix", "create it with one partition, and let cutover read it")
		return nil
	}
	if st.Created {
		log.Info("created topic", "topic", topic, "partitions", 1)
	}
	from, err := ControlEnd(ctx, admin, opts.Topic)
	var cl *kgo.Client
	if err == nil {
		cl, err = Connect(ctx, cfg, ControlConsumerOpts(opts.Topic, from)...)
	}
	if err != nil {
		log.Warn("cutover drain will not be answered: reading the control topic failed", "topic", topic, "err", err)
		return nil
	}
	log.Info("answering cutover drain", "topic", topic)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ServeDrains(ctx, cl, pub, src, log)
	}()
	return func() {
		<-done
		cl.Close()
	}
}
