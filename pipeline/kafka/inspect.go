package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

// InspectTopic describes a topic without creating it: exists is false
// for a topic the cluster does not have. `cutover plan` checks what a
// run would meet with it; EnsureTopic is what the run does.
func InspectTopic(ctx context.Context, cl *kgo.Client, topic string) (info TopicInfo, exists bool, err error) {
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return info, false, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	d, ok := details[topic]
	switch {
	case !ok, errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		return info, false, nil
	case d.Err != nil:
		return info, false, fmt.Errorf("describe topic %s: %w (grant cutover DESCRIBE on the topic)", topic, d.Err)
	}
	info, err = DescribeTopic(ctx, cl, topic)
	return info, true, err
}

// TopicCheckOptions say what a run needs of a topic.
type TopicCheckOptions struct {
	// Partitions and ReplicationFactor are what a run creates a missing
	// topic with; a ReplicationFactor of -1 is the cluster's default.
	Partitions        int32
	ReplicationFactor int16
	// MaxRecordBytes is the largest record the publisher sends
	// (kafka.max_record_bytes).
	MaxRecordBytes int
	// Broker is a broker's address, for the command a fix shows.
	Broker string
}

// CheckTopic is InspectTopic as a preflight step of `cutover plan`: a
// missing topic passes (the run creates it, as the detail says); an
// existing one fails when its max.message.bytes would refuse events the
// publisher sends. exists says whether the topic is there.
func CheckTopic(ctx context.Context, cl *kgo.Client, topic string, opts TopicCheckOptions) (check pipeline.Check, exists bool) {
	name := "topic " + topic
	info, exists, err := InspectTopic(ctx, cl, topic)
	switch {
	case err != nil:
		return pipeline.Failed(name, err), exists
	case !exists:
		rf := fmt.Sprint(opts.ReplicationFactor)
		if opts.ReplicationFactor == -1 {
			rf = "the cluster's default"
		}
		return pipeline.Passed(name, fmt.Sprintf("does not exist: replicate and backfill create it with %d partitions, replication factor %s (the user needs CREATE on the cluster)",
			opts.Partitions, rf)), false
	case info.MaxMessageBytes > 0 && info.MaxMessageBytes < int64(opts.MaxRecordBytes):
		return pipeline.Failed(name, fmt.Errorf("max.message.bytes is %d, below kafka.max_record_bytes %d: events between the two would be refused. "+
			"Raise it: kafka-configs.sh --bootstrap-server %s --alter --entity-type topics --entity-name %s --add-config max.message.bytes=%d; "+
			"or lower --max-record-bytes (kafka.max_record_bytes) to at most %d",
			info.MaxMessageBytes, opts.MaxRecordBytes, opts.Broker, topic, opts.MaxRecordBytes, info.MaxMessageBytes)), true
	}
	retention := "forever"
	if info.Retention >= 0 {
		retention = info.Retention.String()
	}
	return pipeline.Passed(name, fmt.Sprintf("exists: %d partitions, replication factor %d, max.message.bytes %d, retention %s",
		info.Partitions, info.ReplicationFactor, info.MaxMessageBytes, retention)), true
}
