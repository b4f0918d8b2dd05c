package report

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/kafka"
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
)

type fakePublisher struct{ s kafka.PublisherStats }

func (p fakePublisher) Stats() kafka.PublisherStats { return p.s }
func (p fakePublisher) Err() error                  { return nil }

type fakeWorker struct {
	s    kafka.WorkerStats
	poll time.Time
}

func (w fakeWorker) Stats() kafka.WorkerStats  { return w.s }
func (w fakeWorker) LastPoll() time.Time       { return w.poll }
func (w fakeWorker) Progress() *kafka.Progress { return nil }

type fakeSink struct{ c SinkCounters }

func (s fakeSink) Describe() string       { return "redis 127.0.0.1:6379 db 0" }
func (s fakeSink) Counters() SinkCounters { return s.c }

type fakeTable struct {
	scan   ddbsrc.ScanProgress
	stream ddbsrc.StreamStats
}

func (t fakeTable) ScanProgress() (ddbsrc.ScanProgress, bool) { return t.scan, true }
func (t fakeTable) StreamStats() (ddbsrc.StreamStats, bool)   { return t.stream, true }
func (t fakeTable) Heals() int64                              { return 1 }

// tableRun is a table copied to Redis in this process, two events
// dead-lettered.
func tableRun(t *testing.T, log *slog.Logger) *Reporter {
	t.Helper()
	cfg := config.Default()
	cfg.Name = "orders"
	cfg.Source.DynamoDB.Table = "orders"
	cfg.Kafka.Topic, cfg.Kafka.DeadLetterTopic = "cutover.orders", "cutover.orders.dlq"
	return New(&cfg, log, Stages{
		Publisher: fakePublisher{kafka.PublisherStats{Published: 1500, Bytes: 2_500_000, DeadLettered: 2,
			PublishedByOp: pipeline.OpCounts{Upserts: 1400, Deletes: 100}}},
		Worker: fakeWorker{s: kafka.WorkerStats{Applied: 1200, SkippedOlder: 98, Concurrency: 8,
			AppliedByOp: pipeline.OpCounts{Upserts: 1150, Deletes: 50}, SkippedByOp: pipeline.OpCounts{Upserts: 98}}},
		Sink: fakeSink{SinkCounters{Writes: 1200, Throttles: 3, Pace: 250}},
		Table: fakeTable{scan: ddbsrc.ScanProgress{Total: 2000, Items: 1000, ReadCapacity: 512},
			stream: ddbsrc.StreamStats{Records: 500, Deletes: 50, Shards: 4, Gaps: 1}},
	}, time.Now().Add(-10*time.Second))
}

// TestSummary pins the summary's rows: scripts and the end-to-end tests
// read them (summaryCount), so a change here is a change of the CLI.
func TestSummary(t *testing.T) {
	var out bytes.Buffer
	dead := tableRun(t, slog.New(slog.DiscardHandler)).Summary(&out, "replicate", 10*time.Second)
	if dead != 2 {
		t.Errorf("Summary returned %d dead-lettered, want 2", dead)
	}
	want := `
replicate of pipeline "orders" done in 10s
  dynamodb table orders → kafka topic cutover.orders → redis 127.0.0.1:6379 db 0
  items scanned             1,000  about 2,000 in the table; 512 read capacity units 
  stream records              500  50 of them deletes, from 4 shards
  gaps healed                   1  1 trimmed gaps detected
  events published          1,500  2.5 MB; 1,400 upserts, 100 deletes, 0 truncates
  events applied            1,200  1,150 upserts, 50 deletes, 0 truncates; 1,200 writes, 3 throttled and retried, 0 swept by truncates
  skipped as older             98  98 upserts, 0 deletes, 0 truncates; the target already held this version or a newer one
  dead-lettered                 2  topic cutover.orders.dlq
  rate                        150  keys/s

2 events were not copied (a key read in pieces counts once per piece); each is logged above with its reason and is in topic cutover.orders.dlq.
`
	if got := out.String(); got != want {
		t.Errorf("summary:\n%s\nwant:\n%s", got, want)
	}
}

func TestProgressLine(t *testing.T) {
	var out bytes.Buffer
	tableRun(t, slog.New(slog.NewTextHandler(&out, nil))).Log()
	for _, want := range []string{"msg=progress", " scanned_items=1000 of_about=2000 read_capacity=512", " read_pct=50.0",
		" stream_records=500 shards=4", " published=1500 writes=1200 applied=1200 skipped_older=98 dead_lettered=2 throttles=3 in_flight_limit=8 writes_per_s_limit=250",
		" applied_pct=", " eta="} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress line lacks %q:\n%s", want, out.String())
		}
	}
}

// TestCollector: the collector's metrics are consistent with their
// descriptions (a pedantic registry checks), read from the same counters.
func TestCollector(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(tableRun(t, slog.New(slog.DiscardHandler)).Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := func(name string) float64 {
		for _, f := range families {
			if f.GetName() != name {
				continue
			}
			var v float64
			for _, m := range f.GetMetric() { // the op label's series add up
				v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
			return v
		}
		return -1 // not collected
	}
	for name, want := range map[string]float64{"cutover_dead_lettered_total": 2, "cutover_sink_applied_total": 1200,
		"cutover_table_items_scanned_total": 1000, "cutover_stream_records_total": 500, "cutover_sink_rate_limit": 250} {
		if got := sum(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}
