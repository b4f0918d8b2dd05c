package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A member that leaves is waited for; one that stays is named once the
// wait is over.
func TestWaitGroupEmpty(t *testing.T) {
	cl, ctx := eventsCluster(t)
	if members, err := WaitGroupEmpty(ctx, cl, "sinks", time.Second, 10*time.Millisecond); err != nil || len(members) != 0 {
		t.Fatalf("no group: %v, %v", members, err)
	}
	member := joinGroup(ctx, t, cl, "sinks")
	if members, err := WaitGroupEmpty(ctx, cl, "sinks", 200*time.Millisecond, 20*time.Millisecond); err != nil || len(members) != 1 {
		t.Fatalf("a member that stays: %v, %v", members, err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		member.Close() // leaves the group
	}()
	if members, err := WaitGroupEmpty(ctx, cl, "sinks", 10*time.Second, 20*time.Millisecond); err != nil || len(members) != 0 {
		t.Fatalf("a member that leaves: %v, %v", members, err)
	}
}

// joinGroup is a client of cl's cluster that has joined group (consuming
// events) as its only member; the caller closes it.
func joinGroup(ctx context.Context, t *testing.T, cl *kgo.Client, group string) *kgo.Client {
	t.Helper()
	cfg := Config{Brokers: cl.OptValue(kgo.SeedBrokers).([]string)}
	member, err := Connect(ctx, cfg, kgo.ConsumerGroup(group), kgo.ConsumeTopics("events"), kgo.ClientID("worker-1"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		members, err := GroupMembers(ctx, cl, group)
		if err != nil {
			t.Fatal(err)
		}
		if len(members) == 1 {
			return member
		}
		pollCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		member.PollFetches(pollCtx) // joins the group
		cancel()
	}
}
