package kafka

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// CheckDurability warns on log when topic could lose events Kafka
// acknowledged: with one replica, or with min.insync.replicas 1, the loss
// of one broker can take acknowledged events with it (acks=all only waits
// for the replicas in sync). A topic is the replayable log of the
// migration: it should survive a broker. A topic it cannot describe is
// logged too; nothing is refused.
func CheckDurability(ctx context.Context, cl *kgo.Client, topic string, log *slog.Logger) {
	info, err := DescribeTopic(ctx, cl, topic)
	if err != nil {
		log.Warn("could not check the topic's replication", "topic", topic, "err", err)
		return
	}
	switch {
	case info.ReplicationFactor < 2:
		log.Warn("the topic has one replica: losing its broker loses events Kafka acknowledged (fine on a one-broker test stack; "+
			"in production create it with replication factor 3 and min.insync.replicas 2)",
			"topic", topic, "replication_factor", info.ReplicationFactor)
	case info.MinInsyncReplicas < 2:
		log.Warn("the topic's min.insync.replicas is 1: an event acknowledged by one replica is lost with that broker "+
			"(set min.insync.replicas to 2 on the topic)",
			"topic", topic, "replication_factor", info.ReplicationFactor, "min_insync_replicas", info.MinInsyncReplicas)
	}
}
