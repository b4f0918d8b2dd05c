package kafka

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// WaitGroupEmpty waits, up to within, for group to have no members,
// looking every interval: a consumer just stopped (or killed) stays a
// member until its session times out. It returns the members still there
// (none once the group is empty), or ctx's error.
func WaitGroupEmpty(ctx context.Context, cl *kgo.Client, group string, within, interval time.Duration) ([]string, error) {
	members, err := GroupMembers(ctx, cl, group)
	if err != nil || len(members) == 0 {
		return members, err
	}
	deadline := time.Now().Add(within)
	t := time.NewTicker(interval)
	defer t.Stop()
	for len(members) > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return members, ctx.Err()
		case <-t.C:
		}
		if members, err = GroupMembers(ctx, cl, group); err != nil {
			return members, err
		}
	}
	return members, nil
}
