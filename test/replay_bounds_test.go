package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/stack"
)

// TestReplayToTimeAndToOffsets: `replay --to-time` and `--to-offsets`
// start exactly where they say, which no test showed (only
// --to-beginning was run). The topic is written here, record by record,
// with known partitions, offsets and timestamps: ten keys at v1 ten
// minutes ago, then five of them at v2 five minutes ago. Each replay goes
// to an empty target, so what it holds afterwards is exactly what was
// replayed:
//
//	partition 0: k0 k2 k4 k6 k8 (v1, offsets 0–4), k0 k2 k4 (v2, 5–7)
//	partition 1: k1 k3 k5 k7 k9 (v1, offsets 0–4), k1 k3 (v2, 5–6)
//	partitions 2, 3: empty
func TestReplayToTimeAndToOffsets(t *testing.T) {
	t.Parallel()
	src := stack.NewRedis(t) // names the pipeline's source; a replay does not read it
	p := newRedisPipeline(t, src, stack.NewRedis(t))
	ctx := testCtx(t, 2*time.Minute)
	topic := "cutover." + p.name

	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.KafkaBrokers(t)...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	must(t, err)
	defer cl.Close()
	for _, tp := range []string{topic, topic + ".dlq"} {
		_, err := kadm.NewClient(cl).CreateTopic(ctx, 4, 1, nil, tp)
		must(t, err)
	}
	v1At := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	v2At := v1At.Add(5 * time.Minute)
	record := func(i int, version uint64, value string, at time.Time) *kgo.Record {
		e := pipeline.Event{Key: []byte(fmt.Sprint("k", i)), Op: pipeline.OpUpsert, Origin: pipeline.OriginLive,
			Version: pipeline.ClockVersion(0, version, true), Value: pipeline.Value{Type: pipeline.TypeString, String: []byte(value)}}
		raw, err := pipeline.Encode(nil, &e)
		must(t, err)
		return &kgo.Record{Topic: topic, Partition: int32(i % 2), Key: e.Key, Value: raw, Timestamp: at}
	}
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, record(i, 10, "v1", v1At))
	}
	for i := range 5 {
		recs = append(recs, record(i, 20, "v2", v2At))
	}
	for _, r := range recs { // one at a time: offsets in this order
		must(t, cl.ProduceSync(ctx, r).FirstErr())
	}

	replay := func(args ...string) (map[string]string, stack.Result) {
		t.Helper()
		dst := stack.NewRedis(t)
		res := stack.Run(ctx, t, append(append([]string{"replay"}, args...), withFlags(p.args, "--target-redis-addr", dst.Addr)...)...)
		if res.Code != 0 {
			t.Fatalf("replay %v exited %d\n%s\n%s", args, res.Code, res.Stdout, res.Stderr)
		}
		got := map[string]string{}
		for k, v := range redisContents(ctx, t, dst.Client) {
			got[k] = strings.Fields(v)[2]
		}
		return got, res
	}
	check := func(what string, got map[string]string, res stack.Result, want map[string]string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: the target holds %v, want %v\n%s", what, got, want, res.Stdout)
		}
		if n := summaryCount(t, res.Stdout, "events applied"); n != int64(len(want)) {
			t.Errorf("%s: %d events applied, want %d\n%s", what, n, len(want), res.Stdout)
		}
	}

	// Halfway between the two: only the v2 records, on every partition.
	at := v1At.Add(150 * time.Second).UTC().Format(time.RFC3339)
	got, res := replay("--to-time", at)
	check("--to-time "+at, got, res, map[string]string{"k0": "v2", "k1": "v2", "k2": "v2", "k3": "v2", "k4": "v2"})

	// Partition 0 from offset 4; partition 1 keeps its committed offset
	// (its end, after the replay above).
	got, res = replay("--to-offsets", "0:4")
	check("--to-offsets 0:4", got, res, map[string]string{"k0": "v2", "k2": "v2", "k4": "v2", "k8": "v1"})
}
