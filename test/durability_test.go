package test

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/test/stack"
)

// TestTombstonesMustOutliveTheTopic: the README said a replay older than
// a tombstone could bring a deleted key back, and nothing checked it. A
// sink whose tombstones expire before the topic's events now refuses to
// start (exit 2) and says what to change; --allow-short-tombstones
// accepts the risk. Topics cutover creates take the cluster's default
// replication factor.
func TestTombstonesMustOutliveTheTopic(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	seedNumbered(t, src.Client, "k:", 10)
	p := newRedisPipeline(t, src, dst)
	ctx := testCtx(t, 2*time.Minute)
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	month := "2592000000" // 30 days, longer than the Redis target's 8-day tombstones
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 4, -1, map[string]*string{"retention.ms": &month}, "cutover."+p.name); err != nil {
		t.Fatal(err)
	}
	res := stack.Run(ctx, t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 2 || !strings.Contains(res.Stderr, "tombstones are kept 8d but topic cutover."+p.name+" keeps events 720h0m0s") ||
		!strings.Contains(res.Stderr, "--allow-short-tombstones") {
		t.Fatalf("backfill onto a topic that outlives the tombstones: exit %d, want 2 with the fix\n%s", res.Code, res.Stderr)
	}
	res = stack.Run(ctx, t, append([]string{"backfill", "--allow-short-tombstones"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("backfill --allow-short-tombstones: exit %d\n%s", res.Code, res.Stderr)
	}
	if !strings.Contains(res.Stderr, "one replica") {
		t.Errorf("a one-broker topic was not warned about:\n%s", res.Stderr)
	}
	if n := dataKeys(t, dst.Client, "k:*"); n != 10 {
		t.Errorf("%d keys copied, want 10", n)
	}
}
