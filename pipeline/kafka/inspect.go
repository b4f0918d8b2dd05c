package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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
