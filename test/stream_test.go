package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/test/stack"
)

// TestStreamsCarried: Redis streams were dead-lettered as an unsupported
// type. They now reach a Redis target exactly: entries with their IDs and
// fields (in order, repeated fields too), the last ID, the deleted and
// added counters, and the consumer groups with their last-delivered IDs
// and entries-read. A 100,000-entry stream is read in pieces. Live XADD,
// XDEL, XTRIM, XSETID and group commands are followed. To DynamoDB a
// stream is dead-lettered as unmappable, with the reason.
func TestStreamsCarried(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 5*time.Minute)
	c := src.Client

	const entries = 100_000
	for start := 0; start < entries; start += 1000 {
		pipe := c.Pipeline()
		for i := start; i < start+1000; i++ {
			args := []any{"XADD", "s:big", fmt.Sprintf("%d-%d", 1_700_000_000_000+i/3, i%3), "n", i, "payload", strings.Repeat("x", i%50)}
			if i%1000 == 7 {
				args = append(args, "n", "a repeated field", "bin", "\x00\xff\r\n")
			}
			pipe.Do(ctx, args...)
		}
		_, err := pipe.Exec(ctx)
		must(t, err)
	}
	must(t, c.Do(ctx, "XDEL", "s:big", "1700000000100-1", "1700000000200-2").Err())
	must(t, c.XGroupCreate(ctx, "s:big", "readers", "0").Err())
	must(t, c.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "readers", Consumer: "c1", Streams: []string{"s:big", ">"}, Count: 500}).Err())
	must(t, c.XGroupCreate(ctx, "s:big", "tail", "$").Err())

	must(t, c.XAdd(ctx, &goredis.XAddArgs{Stream: "s:emptied", ID: "5-1", Values: []any{"f", "v"}}).Err())
	must(t, c.XDel(ctx, "s:emptied", "5-1").Err())
	must(t, c.XGroupCreate(ctx, "s:emptied", "g", "0").Err())

	must(t, c.XAdd(ctx, &goredis.XAddArgs{Stream: "s:ttl", Values: []any{"a", "1"}}).Err())
	must(t, c.XAdd(ctx, &goredis.XAddArgs{Stream: "s:ttl", Values: []any{"a", "2"}}).Err())
	must(t, c.Expire(ctx, "s:ttl", 2*time.Hour).Err())

	must(t, c.XAdd(ctx, &goredis.XAddArgs{Stream: "s:setid", ID: "10-0", Values: []any{"a", "1"}}).Err())
	must(t, c.Do(ctx, "XSETID", "s:setid", "99-9").Err())
	must(t, c.Set(ctx, "plain", "v", 0).Err())

	keys := []string{"s:big", "s:emptied", "s:ttl", "s:setid"}
	differs := func() string {
		for _, k := range keys {
			want, err := streamState(ctx, c, k)
			must(t, err)
			got, err := streamState(ctx, dst.Client, k)
			must(t, err)
			if got != want {
				return fmt.Sprintf("%s: target %.300s, source %.300s", k, got, want)
			}
		}
		return ""
	}

	p := newRedisPipeline(t, src, dst)
	res := stack.Run(ctx, t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("backfill exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if d := differs(); d != "" {
		t.Fatalf("after the backfill the streams differ: %s", d)
	}
	if ttl := dst.Client.TTL(ctx, "s:ttl").Val(); ttl < time.Hour {
		t.Errorf("s:ttl's TTL arrived as %v", ttl)
	}
	if n := summaryCount(t, res.Stdout, "big keys"); n != 1 {
		t.Errorf("%d keys read in pieces, want the 100,000-entry stream alone:\n%s", n, res.Stdout)
	}

	// Replicate, and change the streams while it runs.
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	// After a backfill, replicate re-reads every key (changes made between
	// the two were not captured) with live capture already on.
	waitLog(t, proc, 2*time.Minute, func(s string) bool { return strings.Contains(s, "heal done") })
	for i := range 20 {
		must(t, c.XAdd(ctx, &goredis.XAddArgs{Stream: "s:big", Values: []any{"live", i}}).Err())
	}
	must(t, c.Do(ctx, "XDEL", "s:big", "1700000000300-0").Err())
	must(t, c.XGroupSetID(ctx, "s:big", "tail", "1700000020000-0").Err())
	must(t, c.XGroupCreate(ctx, "s:setid", "late", "0").Err())
	must(t, c.XTrimMaxLen(ctx, "s:ttl", 1).Err())
	must(t, c.XAdd(ctx, &goredis.XAddArgs{Stream: "s:emptied", ID: "6-0", Values: []any{"back", "again"}}).Err())
	must(t, c.XGroupDestroy(ctx, "s:emptied", "g").Err())
	deadline := time.Now().Add(2 * time.Minute)
	for d := differs(); d != ""; d = differs() {
		if time.Now().After(deadline) || proc.Exited() {
			_, errOut := proc.Output()
			t.Fatalf("live stream changes did not arrive: %s\n%s", d, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code := proc.Stop(); code != 0 {
		t.Fatalf("replicate exited %d", code)
	}

	// To DynamoDB: dead-lettered with the reason, the rest copied.
	pd := newPipeline(t, src, "--create-table", "--key-type", "S")
	res = stack.Run(ctx, t, append([]string{"backfill"}, pd.args...)...)
	if res.Code != 3 {
		t.Fatalf("backfill to DynamoDB exited %d, want 3\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	dl := deadLetters(t, pd.name, len(keys))
	for _, k := range keys {
		if dl[k] != "unmappable" {
			t.Errorf("dead letter of %s to DynamoDB: class %q, want unmappable (all: %v)", k, dl[k], dl)
		}
	}
	if !strings.Contains(res.Stderr, "has no DynamoDB item form") {
		t.Errorf("the backfill does not say why streams were not copied:\n%s", res.Stderr)
	}
}

// streamState is everything of a stream a copy must keep, as text: the
// entries (raw, so the fields' order and repeats count), the last ID, the
// counters, and each group's position.
func streamState(ctx context.Context, c *goredis.Client, key string) (string, error) {
	var b strings.Builder
	ty, err := c.Type(ctx, key).Result()
	if err != nil || ty != "stream" {
		return "type " + ty, err
	}
	entries, err := c.Do(ctx, "XRANGE", key, "-", "+").Slice()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "%d entries %v\n", len(entries), entries)
	fields := func(reply any, names ...string) {
		m := map[any]any{}
		switch r := reply.(type) {
		case map[any]any: // RESP3
			m = r
		case []any:
			for i := 0; i+1 < len(r); i += 2 {
				m[r[i]] = r[i+1]
			}
		}
		for _, n := range names {
			fmt.Fprintf(&b, "%s=%v ", n, m[n])
		}
		b.WriteString("\n")
	}
	info, err := c.Do(ctx, "XINFO", "STREAM", key).Result()
	if err != nil {
		return "", err
	}
	fields(info, "length", "last-generated-id", "max-deleted-entry-id", "entries-added")
	groups, err := c.Do(ctx, "XINFO", "GROUPS", key).Slice()
	if err != nil {
		return "", err
	}
	for _, g := range groups {
		fields(g, "name", "last-delivered-id", "entries-read")
	}
	return b.String(), nil
}
