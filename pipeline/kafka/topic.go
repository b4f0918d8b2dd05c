package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/internal/retry"
)

// TopicSpec describes a topic cutover creates when it is missing.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	// Configs are topic configs such as retention.ms; nil keeps the
	// broker's defaults.
	Configs map[string]*string
}

// EnsureTopics creates the topics named, each like spec, if missing,
// logging each one it creates, and returns the first one's partition
// count: a pipeline's event topic, then its dead-letter topic.
func EnsureTopics(ctx context.Context, cl *kgo.Client, spec TopicSpec, log *slog.Logger, names ...string) (int32, error) {
	var partitions int32
	for i, name := range names {
		spec.Name = name
		st, err := EnsureTopic(ctx, cl, spec)
		if err != nil {
			return 0, err
		}
		if st.Created {
			rf := any(spec.ReplicationFactor)
			if spec.ReplicationFactor == -1 {
				rf = "the cluster's default"
			}
			log.Info("created topic", "topic", name, "partitions", st.Partitions, "replication_factor", rf)
		}
		if i == 0 {
			partitions = st.Partitions
		}
	}
	return partitions, nil
}

// TopicState is what EnsureTopic found or made.
type TopicState struct {
	Created    bool
	Partitions int32
}

// EnsureTopic creates the topic if it does not exist. An existing topic is
// left as it is (its partition count may differ from spec; the caller
// decides whether that matters).
func EnsureTopic(ctx context.Context, cl *kgo.Client, spec TopicSpec) (TopicState, error) {
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, spec.Name)
	if err != nil {
		return TopicState{}, fmt.Errorf("describe topic %s: %w", spec.Name, err)
	}
	if d, ok := details[spec.Name]; ok && d.Err == nil {
		return TopicState{Partitions: int32(len(d.Partitions))}, nil
	}
	resp, err := adm.CreateTopic(ctx, spec.Partitions, spec.ReplicationFactor, spec.Configs, spec.Name)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAlreadyExists) {
		// Another process created it between our look and our create.
		return EnsureTopic(ctx, cl, TopicSpec{Name: spec.Name})
	}
	if errors.Is(err, kerr.InvalidReplicationFactor) {
		return TopicState{}, fmt.Errorf("create topic %s with replication factor %d: %w (lower --kafka-replication-factor to at most the number of brokers)",
			spec.Name, spec.ReplicationFactor, err)
	}
	if err != nil {
		return TopicState{}, fmt.Errorf("create topic %s: %w (create it by hand, or grant cutover CREATE on the cluster)", spec.Name, err)
	}
	return TopicState{Created: true, Partitions: spec.Partitions}, nil
}

// partitionCount asks the cluster how many partitions topic has now.
func partitionCount(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	d, ok := details[topic]
	switch {
	case !ok:
		return 0, fmt.Errorf("describe topic %s: %w", topic, kerr.UnknownTopicOrPartition)
	case d.Err != nil:
		return 0, fmt.Errorf("describe topic %s: %w", topic, d.Err)
	}
	return int32(len(d.Partitions)), nil
}

// EndOffsets returns the offset after the last record of every partition
// of topic: once a consumer group has committed these, it has consumed
// everything written so far.
func EndOffsets(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	var firstErr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && firstErr == nil {
			firstErr = fmt.Errorf("end offset of %s[%d]: %w", topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out, firstErr
}

// CommittedOffsets returns the offsets group has committed on topic. A
// broker that is still starting its group coordinator (a fresh cluster
// creates __consumer_offsets on first use) is waited for, up to a minute.
func CommittedOffsets(ctx context.Context, cl *kgo.Client, group, topic string) (map[int32]int64, error) {
	var resp kadm.OffsetResponses
	err := retry.For(ctx, time.Minute, func() error {
		var err error
		resp, err = kadm.NewClient(cl).FetchOffsets(ctx, group)
		if err != nil && !kerr.IsRetriable(err) {
			return retry.Permanent(err)
		}
		return err
	}, nil, retry.Initial(100*time.Millisecond), retry.Max(time.Minute))
	if errors.Is(err, kerr.GroupIDNotFound) {
		// Some brokers (kfake) say so for a group that never committed.
		return map[int32]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetch committed offsets of group %s: %w", group, err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out, nil
}

// GroupMembers lists the members of a consumer group: the running sink
// workers (their client IDs and hosts).
func GroupMembers(ctx context.Context, cl *kgo.Client, group string) ([]string, error) {
	described, err := kadm.NewClient(cl).DescribeGroups(ctx, group)
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", group, err)
	}
	var out []string
	for _, g := range described {
		if g.Err != nil && !errors.Is(g.Err, kerr.GroupIDNotFound) {
			return nil, fmt.Errorf("describe group %s: %w", group, g.Err)
		}
		for _, m := range g.Members {
			out = append(out, memberName(m))
		}
	}
	return out, nil
}

// StartOffsets returns the first offset still held of every partition.
func StartOffsets(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	listed, err := kadm.NewClient(cl).ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	return offsetsOf(topic, listed)
}

// OffsetsAt returns, for every partition, the offset of the first record
// at or after t (Kafka's ListOffsets by timestamp); partitions with no
// such record give their end offset.
func OffsetsAt(ctx context.Context, cl *kgo.Client, topic string, t time.Time) (map[int32]int64, error) {
	listed, err := kadm.NewClient(cl).ListOffsetsAfterMilli(ctx, t.UnixMilli(), topic)
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s at %s: %w", topic, t.Format(time.RFC3339), err)
	}
	return offsetsOf(topic, listed)
}

func offsetsOf(topic string, listed kadm.ListedOffsets) (map[int32]int64, error) {
	out := map[int32]int64{}
	var firstErr error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && firstErr == nil {
			firstErr = fmt.Errorf("offset of %s[%d]: %w", topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out, firstErr
}

// CommitGroupOffsets sets a group's committed offsets on topic. The group
// must have no running members.
func CommitGroupOffsets(ctx context.Context, cl *kgo.Client, group, topic string, offsets map[int32]int64) error {
	var os kadm.Offsets
	for p, o := range offsets {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1})
	}
	resp, err := kadm.NewClient(cl).CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("commit offsets of group %s: %w", group, err)
	}
	return nil
}

// TopicInfo is what a topic's durability and retention are.
type TopicInfo struct {
	Partitions int32
	// ReplicationFactor is the fewest replicas any partition has.
	ReplicationFactor int
	// MinInsyncReplicas is the topic's min.insync.replicas.
	MinInsyncReplicas int
	// Retention is the topic's retention.ms; negative means forever.
	Retention time.Duration
	// MaxMessageBytes is the topic's max.message.bytes, the largest
	// record batch it takes; 0 when the broker did not say.
	MaxMessageBytes int64
}

// DescribeTopic reads a topic's partitions, replicas and the configs that
// decide whether an acknowledged event survives a broker's loss and how
// long a replay can reach back.
//
// A topic just created may not be known to every broker yet: an unknown
// topic is asked again for up to 10 seconds.
func DescribeTopic(ctx context.Context, cl *kgo.Client, topic string) (TopicInfo, error) {
	adm := kadm.NewClient(cl)
	var d kadm.TopicDetail
	err := retry.For(ctx, 10*time.Second, func() error {
		details, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return retry.Permanent(err)
		}
		var ok bool
		if d, ok = details[topic]; !ok {
			return kerr.UnknownTopicOrPartition
		}
		if errors.Is(d.Err, kerr.UnknownTopicOrPartition) || errors.Is(d.Err, kerr.LeaderNotAvailable) {
			return d.Err
		}
		if d.Err != nil {
			return retry.Permanent(d.Err)
		}
		return nil
	}, nil, retry.Initial(100*time.Millisecond), retry.Max(time.Minute))
	if err != nil {
		return TopicInfo{}, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	info := TopicInfo{Partitions: int32(len(d.Partitions)), ReplicationFactor: -1, MinInsyncReplicas: 1}
	for _, p := range d.Partitions {
		if n := len(p.Replicas); info.ReplicationFactor < 0 || n < info.ReplicationFactor {
			info.ReplicationFactor = n
		}
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return info, fmt.Errorf("describe configs of topic %s: %w", topic, err)
	}
	rc, err := cfgs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return info, fmt.Errorf("describe configs of topic %s: %w", topic, err)
	}
	for _, c := range rc.Configs {
		if c.Value == nil {
			continue
		}
		switch c.Key {
		case "min.insync.replicas":
			_, _ = fmt.Sscan(*c.Value, &info.MinInsyncReplicas)
		case "max.message.bytes":
			_, _ = fmt.Sscan(*c.Value, &info.MaxMessageBytes)
		case "retention.ms":
			var ms int64
			if _, err := fmt.Sscan(*c.Value, &ms); err == nil {
				info.Retention = time.Duration(ms) * time.Millisecond
				if ms < 0 {
					info.Retention = -1
				}
			}
		}
	}
	return info, nil
}
