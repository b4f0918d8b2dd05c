package test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/test/stack"
)

// TestBackfillBadInputErrors runs backfill against each thing a user can
// get wrong and checks the error names the problem and what to do.
func TestBackfillBadInputErrors(t *testing.T) {
	t.Parallel()
	r := stack.NewRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	if err := r.Client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Client.Do(ctx, "ACL", "SETUSER", "app", "on", ">right-password", "~*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	closed := stack.ClosedAddr(t)
	cases := []struct {
		name  string
		flags []string
		env   []string
		code  int
		want  []string
	}{
		{name: "redis unreachable", flags: []string{"--redis-addr", closed}, code: 1,
			want: []string{"redis " + closed + " unreachable", "check --redis-addr"}},
		{name: "redis wrong password", flags: []string{"--redis-username", "app", "--redis-password", "wrong"}, code: 1,
			want: []string{"rejected the credentials of user \"app\"", "--redis-password"}},
		{name: "kafka unreachable", flags: []string{"--kafka-brokers", closed}, code: 1,
			want: []string{"kafka: no broker of " + closed + " answered", "check --kafka-brokers"}},
		{name: "dynamodb unreachable", flags: []string{"--dynamodb-endpoint", "http://" + closed}, code: 1,
			want: []string{"unreachable", "--dynamodb-endpoint"}},
		{name: "aws credentials rejected", env: []string{"AWS_ACCESS_KEY_ID=not-valid!"}, code: 1,
			want: []string{"rejected the AWS credentials", "AWS_ACCESS_KEY_ID"}},
		{name: "missing table", flags: []string{"--dynamodb-table", "no-such-table-" + stack.Unique("x")}, code: 1,
			want: []string{"does not exist", "--create-table"}},
		{name: "invalid configuration", flags: []string{"--key-type", "N", "--partitions", "0"}, code: 2,
			want: []string{"sink.dynamodb.key_type: \"N\" must be S or B", "kafka.partitions: must be positive"}},
		{name: "unknown flag", flags: []string{"--no-such-flag"}, code: 2, want: []string{"unknown flag"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPipeline(t, r, "--key-type", "S")
			args := append([]string{"backfill"}, withFlags(p.args, c.flags...)...)
			if c.name != "missing table" {
				args = append(args, "--create-table")
			}
			res := stack.RunEnv(ctx, t, c.env, args...)
			if res.Code != c.code {
				t.Fatalf("exit %d, want %d\nstderr:\n%s", res.Code, c.code, res.Stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(res.Stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, res.Stderr)
				}
			}
		})
	}
}

// TestBackfillDeadLettersWhatCannotBeCopied: a value too large for a
// DynamoDB item, a value too large for a Kafka record, a key that is not
// UTF-8 for an S key attribute and a Redis stream (which DynamoDB items
// cannot hold) must not stop the backfill and must not vanish: each is
// reported with its key, counted, and written to the dead-letter topic;
// everything else is copied.
func TestBackfillDeadLettersWhatCannotBeCopied(t *testing.T) {
	t.Parallel()
	r := stack.NewRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	for i := range 100 {
		if err := r.Client.Set(ctx, "ok:"+string(rune('a'+i%26))+strings.Repeat("x", i), "fine", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	bad := map[string]string{
		"too-big-for-dynamodb": "target-rejected",
		"too-big-for-kafka":    "unmappable", // a string in pieces, which a DynamoDB item cannot take
		"bin:\xff\xfe":         "unmappable",
		"a-stream":             "unmappable", // carried to Redis targets; no item form
	}
	if err := r.Client.Set(ctx, "too-big-for-dynamodb", strings.Repeat("d", 500_000), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Client.Set(ctx, "too-big-for-kafka", strings.Repeat("k", 2_000_000), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Client.Set(ctx, "bin:\xff\xfe", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Client.XAdd(ctx, &goredis.XAddArgs{Stream: "a-stream", Values: map[string]any{"f": "v"}}).Err(); err != nil {
		t.Fatal(err)
	}

	p := newPipeline(t, r, "--create-table", "--key-type", "S")
	res := stack.Run(ctx, t, append([]string{"backfill"}, p.args...)...)
	if res.Code != 3 {
		t.Fatalf("backfill exited %d, want 3 (done, some keys dead-lettered)\nstdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
	}
	// Three keys, and the 2 MB string's 8 pieces of 256 KiB.
	if n := summaryCount(t, res.Stdout, "dead-lettered"); n != 11 {
		t.Errorf("summary counts %d dead letters, want the 3 keys and the 8 pieces:\n%s", n, res.Stdout)
	}
	for key := range bad {
		// slog quotes a key that is not printable text.
		if !strings.Contains(res.Stderr, "key="+key) && !strings.Contains(res.Stderr, "key="+strconv.Quote(key)) {
			t.Errorf("no log line names key %q:\n%s", key, res.Stderr)
		}
	}

	// Every one of them is in the dead-letter topic, with its class.
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers(t)...), kgo.ConsumeTopics("cutover."+p.name+".dlq"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]string{}
	pollCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(got) < len(bad) {
		f := cl.PollFetches(pollCtx)
		if pollCtx.Err() != nil {
			break
		}
		for _, rec := range f.Records() {
			for _, h := range rec.Headers {
				if h.Key == "cutover.error.class" {
					got[string(rec.Key)] = string(h.Value)
				}
			}
		}
	}
	for key, class := range bad {
		if got[key] != class {
			t.Errorf("dead letter of %q has class %q, want %q (all: %v)", key, got[key], class, got)
		}
	}

	// The 100 good keys are all in the table.
	items := scanTable(t, dynamoClient(t), p.table)
	if len(items) != 100 {
		t.Fatalf("table holds %d items, want the 100 good keys", len(items))
	}
}

// withFlags returns args with each "--flag value" pair of overrides
// replacing the same flag's value in args (slice flags would otherwise
// accumulate both), and any other overrides appended.
func withFlags(args []string, overrides ...string) []string {
	out := append([]string(nil), args...)
	for i := 0; i < len(overrides); i++ {
		o := overrides[i]
		hasValue := i+1 < len(overrides) && !strings.HasPrefix(overrides[i+1], "--")
		j := slices.Index(out, o)
		switch {
		case j >= 0 && hasValue:
			out[j+1] = overrides[i+1]
		case hasValue:
			out = append(out, o, overrides[i+1])
		default:
			out = append(out, o)
		}
		if hasValue {
			i++
		}
	}
	return out
}
