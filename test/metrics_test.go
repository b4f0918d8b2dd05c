package test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/test/datagen"
	"github.com/cutover/cutover/test/stack"
)

// metricValue is the sum of a metric's samples over its labels (-1 when
// the page has none).
func metricValue(page, name string) float64 {
	ms := regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`(\{[^}]*\})? ([0-9.e+-]+)$`).FindAllStringSubmatch(page, -1)
	if ms == nil {
		return -1
	}
	var sum float64
	for _, m := range ms {
		v, _ := strconv.ParseFloat(m[2], 64)
		sum += v
	}
	return sum
}

// TestMetricsAndHealthChecks: replicate with --metrics-addr serves the
// pipeline's counters as Prometheus metrics, and health checks that say
// it is alive and ready.
func TestMetricsAndHealthChecks(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	if _, err := datagen.Seed(testCtx(t, time.Minute), src.Client, datagen.Spec{Keys: 2000, Seed: 81}); err != nil {
		t.Fatal(err)
	}
	p := newRedisPipeline(t, src, dst)
	addr := freeAddr(t)
	proc := stack.Start(t, nil, append([]string{"replicate", "--metrics-addr", addr}, p.args...)...)
	defer proc.Stop()
	stop := writeWhile(t, src, &datagen.Writer{Keys: 200, Seed: 9, Prefix: "w:", Rate: 200})
	defer stop()

	deadline := time.Now().Add(time.Minute)
	var page string
	for {
		page = httpGet(t, "http://"+addr+"/metrics")
		if metricValue(page, "cutover_snapshot_done") == 1 && metricValue(page, "cutover_live_events_total") > 0 &&
			metricValue(page, "cutover_sink_applied_total") >= 2000 {
			break
		}
		if time.Now().After(deadline) {
			out, errOut := proc.Output()
			t.Fatalf("metrics never showed the snapshot done and live events applied:\n%s\n%s\n%s", page, out, errOut)
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, name := range []string{"cutover_snapshot_keys_scanned_total", "cutover_snapshot_keys", "cutover_events_published_total",
		"cutover_live_notifications_total", "cutover_sink_writes_total", "cutover_dead_lettered_total", "cutover_sink_fetch_paused",
		"cutover_end_to_end_lag_seconds_count"} {
		if metricValue(page, name) < 0 {
			t.Errorf("metric %s missing", name)
		}
	}
	for _, series := range []string{`cutover_consumer_lag_records{partition="0"`, `cutover_checkpoint_age_seconds{checkpoint="redis/`,
		`cutover_sink_applied_total{op="upsert"`, `cutover_sink_applied_total{op="delete"`, `cutover_events_published_total{op="truncate"`} {
		if !strings.Contains(page, series) {
			t.Errorf("no %s… series", series)
		}
	}
	if v := metricValue(page, "cutover_snapshot_keys_scanned_total"); v < 2000 { // the writer adds a few
		t.Errorf("snapshot scanned %v keys, want 2000 or more", v)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		req, err := http.NewRequestWithContext(testCtx(t, 10*time.Second), http.MethodGet, "http://"+addr+path, nil)
		must(t, err)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		body := make([]byte, 64)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body[:n]), want) {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body[:n])
		}
	}
}

// TestStatusShowsCheckpointsLagAndDeadLetters: status after a source that
// published without a sink shows the lag and no dead letter; after a sink
// caught up, no lag, and the one record it could not decode counted as a
// dead letter (a run that never dead-letters would show 0 whether status
// counts them or not).
func TestStatusShowsCheckpointsLagAndDeadLetters(t *testing.T) {
	t.Parallel()
	src, dst := stack.NewRedis(t), stack.NewRedis(t)
	if _, err := datagen.Seed(testCtx(t, time.Minute), src.Client, datagen.Spec{Keys: 1000, Seed: 82}); err != nil {
		t.Fatal(err)
	}
	p := newRedisPipeline(t, src, dst)
	status := func() (rep struct {
		Checkpoints []struct {
			Name  string          `json:"name"`
			State json.RawMessage `json:"state"`
		} `json:"checkpoints"`
		Partitions  []struct{ Lag int64 } `json:"partitions"`
		Lag         int64                 `json:"lag"`
		DeadLetters int64                 `json:"dead_letters"`
	}) {
		res := stack.Run(testCtx(t, time.Minute), t, append([]string{"status", "--output", "json"}, p.args...)...)
		if res.Code != 0 {
			t.Fatalf("status exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
		}
		must(t, json.Unmarshal([]byte(res.Stdout), &rep))
		return rep
	}
	// The source alone: everything published is lag.
	proc := stack.Start(t, nil, append([]string{"replicate", "--no-sink"}, p.args...)...)
	waitLog(t, proc, time.Minute, func(s string) bool { return strings.Contains(s, "snapshot published") })
	proc.Stop()
	rep := status()
	if rep.Lag < 1000 || len(rep.Partitions) != 4 || len(rep.Checkpoints) == 0 {
		t.Fatalf("after the source alone: %+v", rep)
	}
	if !strings.Contains(string(rep.Checkpoints[len(rep.Checkpoints)-1].Name), "/") {
		t.Fatalf("checkpoint names: %+v", rep.Checkpoints)
	}
	if rep.DeadLetters != 0 {
		t.Fatalf("dead letters before anything was dead-lettered: %d", rep.DeadLetters)
	}
	// A record that is not an event, for the sink to dead-letter.
	produce(t, "cutover."+p.name, []byte("\x00not an event"))
	// A sink worker catches up.
	sink := stack.Start(t, nil, append([]string{"sink"}, p.args...)...)
	deadline := time.Now().Add(time.Minute)
	for rep = status(); rep.Lag > 0; rep = status() {
		if time.Now().After(deadline) {
			t.Fatalf("lag still %d after a minute", rep.Lag)
		}
		time.Sleep(time.Second)
	}
	sink.Stop()
	if rep.DeadLetters != 1 {
		t.Fatalf("dead letters: %d, want the 1 record that is not an event", rep.DeadLetters)
	}
}
