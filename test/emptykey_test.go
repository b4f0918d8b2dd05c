package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/test/stack"
)

// Redis accepts the empty key (SET "" v). cutover used to refuse it as an
// invalid event at the publisher, which treated an invalid event as a bug
// of the source and failed every later publish: backfill stopped with
// `publish key "": invalid event: empty key (run the same command again to
// resume)`, and every rerun stopped at the same SCAN cursor, forever. The
// empty key is a key like any other: it travels, a Redis target holds it,
// and a target that cannot hold it dead-letters that one key.

// seedEmptyKey writes the empty key, with an expiry, next to ordinary keys.
func seedEmptyKey(t *testing.T, r *stack.Redis, others int) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	if err := r.Client.Set(ctx, "", "the empty key's value", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range others {
		if err := r.Client.Set(ctx, fmt.Sprintf("k:%d", i), fmt.Sprintf("v%d", i), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBackfillCopiesTheEmptyKeyToRedis(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	const others = 200
	seedEmptyKey(t, src, others)
	p := newRedisPipeline(t, src, dst)

	res := stack.Run(ctx, t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("backfill exited %d, want 0\nstdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if n := summaryCount(t, res.Stdout, "events applied"); n != others+1 {
		t.Errorf("%d events applied, want %d:\n%s", n, others+1, res.Stdout)
	}

	got, err := dst.Client.Get(ctx, "").Result()
	if err != nil || got != "the empty key's value" {
		t.Fatalf("target's empty key = %q, %v; want the source's value", got, err)
	}
	srcTTL, err := src.Client.PTTL(ctx, "").Result()
	if err != nil {
		t.Fatal(err)
	}
	dstTTL, err := dst.Client.PTTL(ctx, "").Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := dstTTL - srcTTL; d < -5*time.Second || d > 5*time.Second {
		t.Errorf("target's empty key expires in %v, the source's in %v", dstTTL, srcTTL)
	}
	for i := range others {
		if v, err := dst.Client.Get(ctx, fmt.Sprintf("k:%d", i)).Result(); err != nil || v != fmt.Sprintf("v%d", i) {
			t.Fatalf("target's k:%d = %q, %v", i, v, err)
		}
	}

	// reconcile compares the empty key like any other and finds nothing.
	if rec := stack.Run(ctx, t, append([]string{"reconcile"}, p.args...)...); rec.Code != 0 {
		t.Fatalf("reconcile exited %d\nstdout:\n%s\nstderr:\n%s", rec.Code, rec.Stdout, rec.Stderr)
	}
}

func TestBackfillDeadLettersTheEmptyKeyForDynamoDB(t *testing.T) {
	t.Parallel()
	r := stack.NewRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	const others = 200
	seedEmptyKey(t, r, others)
	p := newPipeline(t, r, "--create-table", "--key-type", "B")

	// A DynamoDB key attribute cannot be empty: that one key is
	// dead-lettered (exit status 3), everything else is copied.
	res := stack.Run(ctx, t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 3 {
		t.Fatalf("backfill exited %d, want 3 (done, the empty key dead-lettered)\nstdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if n := summaryCount(t, res.Stdout, "dead-lettered"); n != 1 {
		t.Errorf("summary counts %d dead letters, want the empty key alone:\n%s", n, res.Stdout)
	}
	if !strings.Contains(res.Stderr, `key=""`) {
		t.Errorf("no log line names the empty key:\n%s", res.Stderr)
	}
	if items := scanTable(t, dynamoClient(t), p.table); len(items) != others {
		t.Errorf("table holds %d items, want the %d other keys", len(items), others)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers(t)...), kgo.ConsumeTopics("cutover."+p.name+".dlq"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pollCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var dead []*kgo.Record
	for len(dead) == 0 && pollCtx.Err() == nil {
		dead = append(dead, cl.PollFetches(pollCtx).Records()...)
	}
	if len(dead) != 1 {
		t.Fatalf("dead-letter topic holds %d records, want the empty key's", len(dead))
	}
	rec := dead[0]
	hdr := map[string]string{}
	for _, h := range rec.Headers {
		hdr[h.Key] = string(h.Value)
	}
	if len(rec.Key) != 0 || hdr["cutover.error.class"] != "unmappable" || hdr["cutover.stage"] != "sink" ||
		!strings.Contains(hdr["cutover.error"], "empty key") || len(rec.Value) == 0 {
		t.Fatalf("dead letter: key %q, %d bytes of value, headers %v; want the empty key's event, class unmappable, an error naming the empty key",
			rec.Key, len(rec.Value), hdr)
	}
}
