package test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/faultproxy"
	"github.com/cutover/cutover/test/stack"
)

// summaryCount reads a number from a summary row, e.g. "skipped as older".
func summaryCount(t *testing.T, out, label string) int64 {
	t.Helper()
	m := regexp.MustCompile(regexp.QuoteMeta(label) + `\s+([0-9,]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("summary has no %q row:\n%s", label, out)
	}
	n, _ := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	return n
}

// noteCount reads a number written just before what in a summary row's
// note, e.g. "throttled and retried" in "12,000 writes, 34 throttled and
// retried".
func noteCount(t *testing.T, out, what string) int64 {
	t.Helper()
	m := regexp.MustCompile(`([0-9,]+) ` + regexp.QuoteMeta(what)).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("summary has no count of %q:\n%s", what, out)
	}
	n, _ := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
	return n
}

// waitOps waits until a writer has made n operations: a workload measured
// in changes, not in seconds, is the same on a slow machine.
func waitOps(t *testing.T, w *datagen.Writer, n int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for w.Ops() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the writer made %d of %d operations within %v", w.Ops(), n, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// groupState is a consumer group as the broker describes it: its state
// (Stable, PreparingRebalance, Empty, ...) and the partitions each member
// holds, by instance ID (a sink's --worker-id) or client ID.
type groupState struct {
	state string
	held  map[string]int
}

func (g groupState) String() string { return fmt.Sprintf("%s %v", g.state, g.held) }

// waitGroup waits until the sink group of the pipeline named name is in a
// state cond accepts.
func waitGroup(t *testing.T, name string, within time.Duration, cond func(groupState) bool) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers(t)...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	group := "cutover-" + name + "-sink"
	deadline := time.Now().Add(within)
	var last groupState
	for {
		described, err := adm.DescribeGroups(testCtx(t, 10*time.Second), group)
		if err == nil {
			if g, ok := described[group]; ok && g.Err == nil {
				last = groupState{state: g.State, held: map[string]int{}}
				for _, m := range g.Members {
					id := m.ClientID
					if m.InstanceID != nil {
						id = *m.InstanceID
					}
					last.held[id] = 0
					if c, ok := m.Assigned.AsConsumer(); ok {
						for _, tp := range c.Topics {
							last.held[id] += len(tp.Partitions)
						}
					}
				}
				if cond(last) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s not in the state waited for within %v: last %v (err %v)", group, within, last, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestReplayFromZeroChangesNothing: after a backfill and live changes, a
// replay of the whole topic leaves the target exactly as it was, and
// every replayed event is counted as skipped (the target already held it
// or something newer). Replay refuses while a sink worker runs.
func TestReplayFromZeroChangesNothing(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	if _, err := datagen.Seed(ctx, src.Client, datagen.Spec{Keys: 5000, Seed: 41, TTLFraction: 0.1}); err != nil {
		t.Fatal(err)
	}
	p := newRedisPipeline(t, src, dst)
	proc := stack.Start(t, nil, append([]string{"replicate"}, p.args...)...)
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "snapshot published") })
	w := &datagen.Writer{Keys: 500, Seed: 6, Prefix: "w:", Rate: 1000}
	stop := writeWhile(t, src, w)
	waitOps(t, w, 3000, time.Minute)
	stop()
	waitConverged(t, p, time.Minute)
	proc.Stop()

	// A running worker blocks the replay: once it holds the partitions
	// (before that, the replay would rightly find no worker and go ahead).
	worker := stack.Start(t, nil, append([]string{"sink", "--worker-id", "w1"}, p.args...)...)
	waitGroup(t, p.name, time.Minute, func(g groupState) bool {
		return g.state == "Stable" && g.held["cutover-"+p.name+"-w1"] > 0
	})
	res := stack.Run(ctx, t, append([]string{"replay", "--to-beginning"}, p.args...)...)
	if res.Code != 1 || !strings.Contains(res.Stderr, "are running") {
		t.Fatalf("replay with a running worker exited %d:\n%s", res.Code, res.Stderr)
	}
	if code := worker.Stop(); code != 0 {
		t.Fatalf("sink worker exited %d on SIGTERM", code)
	}

	dry := stack.Run(ctx, t, append([]string{"replay", "--to-beginning", "--dry-run"}, p.args...)...)
	if dry.Code != 0 || !strings.Contains(dry.Stdout, "nothing changed") {
		t.Fatalf("dry run exited %d:\n%s\n%s", dry.Code, dry.Stdout, dry.Stderr)
	}
	m := regexp.MustCompile(`([0-9,]+) events to apply again`).FindStringSubmatch(dry.Stdout)
	if m == nil {
		t.Fatalf("dry run shows no total:\n%s", dry.Stdout)
	}
	events, _ := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)

	res = stack.Run(ctx, t, append([]string{"replay", "--to-beginning"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("replay exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	skipped := summaryCount(t, res.Stdout, "skipped as older")
	applied := summaryCount(t, res.Stdout, "events applied")
	if skipped+applied != events || applied != 0 {
		t.Fatalf("replayed %d events: %d applied, %d skipped; want all skipped\n%s", events, applied, skipped, res.Stdout)
	}
	waitConverged(t, p, 10*time.Second)
}

// produce writes events (or raw values) straight to a pipeline's topic,
// creating it.
func produce(t *testing.T, topic string, values ...[]byte) {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers(t)...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, tp := range []string{topic, topic + ".dlq"} {
		if _, err := adm.CreateTopic(ctx, 2, 1, nil, tp); err != nil && !strings.Contains(err.Error(), "TOPIC_ALREADY_EXISTS") {
			t.Fatal(err)
		}
	}
	for _, v := range values {
		key := []byte("raw")
		if e, err := pipeline.Decode(v); err == nil {
			key = e.Key
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func encode(t *testing.T, e pipeline.Event) []byte {
	t.Helper()
	b, err := pipeline.Encode(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOutOfOrderEventsAreSkipped delivers events of a key out of order on
// purpose: an older version after a newer one is skipped, and an older
// upsert after a delete leaves the key deleted.
func TestOutOfOrderEventsAreSkipped(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	p := newRedisPipeline(t, src, dst)
	v := func(n uint64) pipeline.Version { return pipeline.ClockVersion(0, n, true) }
	up := func(key string, n uint64, val string) []byte {
		return encode(t, pipeline.Event{Key: []byte(key), Op: pipeline.OpUpsert, Origin: pipeline.OriginLive, Version: v(n),
			Value: pipeline.Value{Type: pipeline.TypeString, String: []byte(val)}})
	}
	del := func(key string, n uint64) []byte {
		return encode(t, pipeline.Event{Key: []byte(key), Op: pipeline.OpDelete, Origin: pipeline.OriginLive, Version: v(n)})
	}
	produce(t, "cutover."+p.name,
		up("a", 20, "new"), up("a", 10, "old"), // older after newer
		up("b", 10, "x"), del("b", 30), up("b", 20, "late"), // older upsert after a delete
		up("c", 5, "only"))
	res := stack.Run(testCtx(t, time.Minute), t, append([]string{"replay", "--to-beginning"}, p.args...)...)
	if res.Code != 0 {
		t.Fatalf("replay exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	ctx := testCtx(t, time.Minute)
	if got := dst.Client.Get(ctx, "a").Val(); got != "new" {
		t.Errorf("a = %q, want the newer value", got)
	}
	if n := dst.Client.Exists(ctx, "b").Val(); n != 0 {
		t.Errorf("b was resurrected by an older upsert after its delete")
	}
	if got := dst.Client.Get(ctx, "c").Val(); got != "only" {
		t.Errorf("c = %q", got)
	}
	// Each worker applies a partition's events in order: a's older event
	// and b's late upsert are skipped, wherever they land.
	if n := summaryCount(t, res.Stdout, "skipped as older"); n < 2 {
		t.Errorf("skipped %d events, want at least the 2 out-of-order ones\n%s", n, res.Stdout)
	}
}

// TestBackfillUnderThrottling: 30% of DynamoDB writes are answered with
// ProvisionedThroughputExceededException by a proxy during a 50,000-event
// backfill. Nothing is lost, the backfill completes, throttles are counted
// and the worker pauses fetching while the table throttles.
func TestBackfillUnderThrottling(t *testing.T) {
	t.Parallel()
	stack.LoadDynamoDB(t, 2)
	src := stack.NewRedis(t)
	ctx := testCtx(t, 10*time.Minute)
	p, proxy, res := backfillThroughFaults(ctx, t, src, datagen.Spec{Keys: 50_000, Seed: 51, MaxElements: 3}, faultproxy.Faults{Throttle: 0.3})
	st := proxy.Stats()
	if st.Throttled < 1000 {
		t.Fatalf("the proxy throttled only %d writes", st.Throttled)
	}
	// Every throttle the proxy answered was seen and retried by the sink
	// (the SDK's own retryer is off for its writes), and reported.
	if n := noteCount(t, res.Stdout, "throttled and retried"); n != st.Throttled {
		t.Errorf("%d throttles reported, the proxy throttled %d:\n%s", n, st.Throttled, res.Stdout)
	}
	proxy.Set(faultproxy.Faults{})
	waitConverged(t, p, time.Minute)
}

// backfillThroughFaults seeds src from spec and backfills it into a new
// table with 32 sink workers whose DynamoDB calls go through a fault proxy
// answering with faults. The backfill must exit 0; the proxy keeps running
// (with its stats, and faults to lift) until the test ends.
func backfillThroughFaults(ctx context.Context, t *testing.T, src *stack.Redis, spec datagen.Spec, faults faultproxy.Faults) (pipelineArgs, *faultproxy.Proxy, stack.Result) {
	t.Helper()
	if _, err := datagen.Seed(ctx, src.Client, spec); err != nil {
		t.Fatal(err)
	}
	proxy, err := faultproxy.Start("127.0.0.1:0", stack.DynamoDBEndpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	proxy.Set(faults)
	p := newPipeline(t, src, "--create-table", "--sink-concurrency", "32")
	args := withFlags(p.args, "--dynamodb-endpoint", proxy.URL)
	res := stack.Run(ctx, t, append([]string{"backfill"}, args...)...)
	if res.Code != 0 {
		t.Fatalf("backfill exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	st := proxy.Stats()
	t.Logf("proxy: %d requests, %d throttled\n%s", st.Requests, st.Throttled, res.Stdout)
	return p, proxy, res
}

// TestSinkAdaptsToTableCapacity: a table that takes 40 writes/s and
// throttles the excess, as a provisioned table does. The sink slows down
// to what the table takes (instead of hammering it with retries), stops
// fetching from Kafka while it is over, and loses nothing.
//
// The capacity is far below what 32 concurrent writers offer on any
// machine that runs DynamoDB Local at all, so the table throttles however
// fast the machine is; and the test checks that it did, since a sink
// that never exceeded the capacity would pass every other check here
// without having adapted to anything.
func TestSinkAdaptsToTableCapacity(t *testing.T) {
	t.Parallel()
	stack.LoadDynamoDB(t, 1)
	src := stack.NewRedis(t)
	ctx := testCtx(t, 5*time.Minute)
	p, proxy, res := backfillThroughFaults(ctx, t, src, datagen.Spec{Keys: 800, Seed: 52, MaxElements: 3}, faultproxy.Faults{Capacity: 40})
	st := proxy.Stats()
	if st.Throttled == 0 {
		t.Fatalf("the table never throttled: the sink did not write faster than its capacity, so nothing here was tested\n%s", res.Stdout)
	}
	if n := noteCount(t, res.Stdout, "throttled and retried"); n != st.Throttled {
		t.Errorf("%d throttles reported, the proxy throttled %d", n, st.Throttled)
	}
	if summaryCount(t, res.Stdout, "fetch pauses") == 0 {
		t.Errorf("fetching never paused while the table throttled:\n%s", res.Stdout)
	}
	// Hammering would throttle about as many calls as it makes; pacing
	// keeps the throttled share small.
	if float64(st.Throttled) > 0.5*float64(st.Requests) {
		t.Errorf("%d of %d calls throttled: the sink did not slow down to the table's capacity", st.Throttled, st.Requests)
	}
	proxy.Set(faultproxy.Faults{})
	waitConverged(t, p, time.Minute)
}

// TestPoisonRecordsAreDeadLettered: a record that is not an event and an
// item over DynamoDB's 400 KB limit land in the dead-letter topic with
// their error; everything else applies.
func TestPoisonRecordsAreDeadLettered(t *testing.T) {
	t.Parallel()
	src := stack.NewRedis(t)
	p := newPipeline(t, src, "--create-table")
	good := func(key string) []byte {
		return encode(t, pipeline.Event{Key: []byte(key), Op: pipeline.OpUpsert, Origin: pipeline.OriginLive,
			Version: pipeline.ClockVersion(0, 1, true), Value: pipeline.Value{Type: pipeline.TypeString, String: []byte("v")}})
	}
	huge := encode(t, pipeline.Event{Key: []byte("huge"), Op: pipeline.OpUpsert, Origin: pipeline.OriginLive,
		Version: pipeline.ClockVersion(0, 1, true), Value: pipeline.Value{Type: pipeline.TypeString, String: make([]byte, 450_000)}})
	produce(t, "cutover."+p.name, good("k1"), []byte("\x00not an event"), huge, good("k2"), []byte(`{"v":99}`), good("k3"))
	res := stack.Run(testCtx(t, time.Minute), t, append([]string{"replay", "--to-beginning"}, p.args...)...)
	if res.Code != 3 {
		t.Fatalf("replay exited %d, want 3 (dead letters)\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	if n := summaryCount(t, res.Stdout, "events applied"); n != 3 {
		t.Errorf("applied %d, want the 3 good events\n%s", n, res.Stdout)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers(t)...), kgo.ConsumeTopics("cutover."+p.name+".dlq"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	classes := map[string]int{}
	pollCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for n := 0; n < 3 && pollCtx.Err() == nil; {
		for _, r := range cl.PollFetches(pollCtx).Records() {
			n++
			for _, h := range r.Headers {
				if h.Key == "cutover.error.class" {
					classes[string(h.Value)]++
				}
			}
		}
	}
	if classes["decode"] != 2 || classes["target-rejected"] != 1 {
		t.Fatalf("dead-letter classes %v, want 2 decode and 1 target-rejected", classes)
	}
}

// TestSinkWorkersScaleOutAndSurviveSIGKILL: the source runs alone; two
// sink workers share the partitions; one is killed with SIGKILL while it
// applies events and a third joins later. Each step waits for the group to
// show it (both workers holding partitions and applying; the killed one's
// partitions moved to the other two once its session expired, and the
// newcomer applying), and the target ends exact.
func TestSinkWorkersScaleOutAndSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	ctx := testCtx(t, 3*time.Minute)
	if _, err := datagen.Seed(ctx, src.Client, datagen.Spec{Keys: 20_000, Seed: 61}); err != nil {
		t.Fatal(err)
	}
	p := newRedisPipeline(t, src, dst, "--partitions", "6")
	member := func(id string) string { return "cutover-" + p.name + "-" + id }
	applying := func(w *stack.Proc) {
		t.Helper()
		waitLog(t, w, time.Minute, func(s string) bool { return regexp.MustCompile(`\bapplied=[1-9]`).MatchString(s) })
	}
	source := stack.Start(t, nil, append([]string{"replicate", "--no-sink"}, p.args...)...)
	a := stack.Start(t, nil, append([]string{"sink", "--worker-id", "a"}, p.args...)...)
	b := stack.Start(t, nil, append([]string{"sink", "--worker-id", "b"}, p.args...)...)
	stop := writeWhile(t, src, &datagen.Writer{Keys: 1000, Seed: 7, Prefix: "w:", Rate: 1500})
	waitGroup(t, p.name, time.Minute, func(g groupState) bool {
		return g.state == "Stable" && g.held[member("a")] > 0 && g.held[member("b")] > 0
	})
	applying(a)
	a.Kill()
	c := stack.Start(t, nil, append([]string{"sink", "--worker-id", "c"}, p.args...)...)
	// a, a static member, keeps its partitions until its session times out.
	waitGroup(t, p.name, time.Minute, func(g groupState) bool {
		_, stale := g.held[member("a")]
		return g.state == "Stable" && !stale && g.held[member("b")] > 0 && g.held[member("c")] > 0 &&
			g.held[member("b")]+g.held[member("c")] == 6
	})
	applying(c)
	stop()
	waitConverged(t, p, 90*time.Second)
	for name, w := range map[string]*stack.Proc{"source": source, "b": b, "c": c} {
		if code := w.Stop(); code != 0 {
			_, errOut := w.Output()
			t.Errorf("%s exited %d on SIGTERM\n%s", name, code, errOut)
		}
	}
}
