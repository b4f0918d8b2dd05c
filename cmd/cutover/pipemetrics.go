package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/kafka"
)

// serveMetrics serves the pipeline's metrics and health checks when
// --metrics-addr is set.
func (w *wiring) serveMetrics(ctx context.Context, rep *reporter) error {
	if w.cfg.MetricsAddr == "" {
		return nil
	}
	cs := []prometheus.Collector{pipelineCollector{rep}}
	if w.e2eLag != nil {
		cs = append(cs, w.e2eLag)
	}
	return serveMetrics(ctx, w.cfg.MetricsAddr, w.cfg.Name, w.log, rep.ready, cs...)
}

// newLagHistogram is the end-to-end lag: from the source's read of a
// key to the sink's apply of that read, 1 ms to about 9 hours.
func newLagHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cutover_end_to_end_lag_seconds",
		Help:    "Time from the source's read of a key to the target's apply of it (snapshot reads included: during a backfill this is the backfill's age).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 25),
	})
}

// stalled is how long a sink worker may go without polling Kafka before
// /readyz reports it.
const stalled = 2 * time.Minute

// ready is /readyz: the connections were made (the server starts after
// them), the publisher, if any, works, a Redis source follows at least one
// node, and the sink worker, if any, polls Kafka.
func (r *reporter) ready() error {
	if r.w.pub != nil {
		if err := r.w.pub.Err(); err != nil {
			return fmt.Errorf("publishing to Kafka failed: %w", err)
		}
	}
	if st := r.redisStats(); st.HasLive && st.Nodes == 0 {
		return errors.New("the Redis source follows no node")
	}
	if r.w.worker == nil {
		return nil
	}
	last := r.w.worker.LastPoll()
	switch {
	case last.IsZero():
		return errors.New("the sink worker has not polled Kafka yet")
	case time.Since(last) > stalled:
		return fmt.Errorf("the sink worker last polled Kafka %s ago", time.Since(last).Round(time.Second))
	}
	return nil
}

// pipelineCollector exposes a running pipeline's counters as Prometheus
// metrics. It reads the same counters the progress log and the summary
// read, at scrape time, so nothing is counted twice.
type pipelineCollector struct {
	r *reporter
}

// pipeMetric is one metric of the pipeline collector: its description
// and its type, declared together so that the value Collect sends and
// the metrics reference (cutover dev gen-docs) agree.
type pipeMetric struct {
	name, help string
	labels     []string
	kind       prometheus.ValueType
	desc       *prometheus.Desc
}

// pipelineMetrics are the collector's metrics, in the order declared.
var pipelineMetrics []*pipeMetric

func pmetric(kind prometheus.ValueType, name, help string, labels ...string) *pipeMetric {
	m := &pipeMetric{name: "cutover_" + name, help: help, labels: labels, kind: kind,
		desc: prometheus.NewDesc("cutover_"+name, help, labels, nil)}
	pipelineMetrics = append(pipelineMetrics, m)
	return m
}

func pcounter(name, help string, labels ...string) *pipeMetric {
	return pmetric(prometheus.CounterValue, name, help, labels...)
}

func pgauge(name, help string, labels ...string) *pipeMetric {
	return pmetric(prometheus.GaugeValue, name, help, labels...)
}

// value is the metric's sample of v.
func (m *pipeMetric) value(v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(m.desc, m.kind, v, labels...)
}

var (
	mSnapScanned   = pcounter("snapshot_keys_scanned_total", "Keys the Redis snapshot scanned.")
	mSnapTotal     = pgauge("snapshot_keys", "Keys in the source when the snapshot started (DBSIZE).")
	mSnapDone      = pgauge("snapshot_done", "1 once every node's snapshot is published.")
	mLiveNotif     = pcounter("live_notifications_total", "Keyspace notifications received.")
	mLiveEvents    = pcounter("live_events_total", "Events published by live capture.")
	mLiveGaps      = pcounter("live_gaps_total", "Gaps detected in notification capture.")
	mLiveHeals     = pcounter("live_heals_total", "Gaps healed by a re-read.")
	mLiveDirty     = pgauge("live_dirty_keys", "Keys changed and waiting to be read.")
	mMasters       = pcounter("source_masters_changed_total", "Changes of the Redis source's masters followed (a Sentinel or cluster failover, a resharding), each in a new version epoch.")
	mTableItems    = pcounter("table_items_scanned_total", "Items the DynamoDB source's Scan read.")
	mTableTotal    = pgauge("table_items", "Items in the source table, as DynamoDB reports (updated about every 6 hours).")
	mStreamRecords = pcounter("stream_records_total", "DynamoDB stream records read.")
	mStreamAge     = pgauge("stream_age_seconds", "Age of the newest stream record read.")
	mStreamHeals   = pcounter("stream_gaps_healed_total", "DynamoDB stream gaps (trimmed records) healed by a re-scan.")
	mPublished     = pcounter("events_published_total", "Events acknowledged by Kafka, by operation (upsert, delete, truncate: one per partition it is copied to).", "op")
	mDeadLettered  = pcounter("dead_lettered_total", "Records sent to the dead-letter topic.")
	mApplied       = pcounter("sink_applied_total", "Events applied to the target, by operation (upsert, delete, truncate).", "op")
	mSkipped       = pcounter("sink_skipped_older_total", "Events skipped because the target held that version or a newer one, by operation.", "op")
	mWrites        = pcounter("sink_writes_total", "Writes made to the target.")
	mThrottles     = pcounter("sink_throttles_total", "Writes the target throttled (retried).")
	mRetries       = pcounter("sink_retries_total", "Writes retried after a transient error.")
	mRateLimit     = pgauge("sink_rate_limit", "Current adaptive write-rate limit in writes/s (0: none).")
	mPaused        = pgauge("sink_fetch_paused", "1 while fetching from Kafka is paused for a throttling target.")
	mConcurrency   = pgauge("sink_concurrency", "Sink calls the worker may have in flight now (adapted below the configured ceiling).")
	mLag           = pgauge("sink_lag_records", "Records published but not yet applied (backfill and replay).")
	mConsumerLag   = pgauge("consumer_lag_records", "Records in the topic beyond the consumer group's committed offset, per partition.", "partition")
	mCheckpointAge = pgauge("checkpoint_age_seconds", "Time since each of the pipeline's checkpoints was saved.", "checkpoint")
)

func (c pipelineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range pipelineMetrics {
		ch <- m.desc
	}
}

func (c pipelineCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	emit := func(m *pipeMetric, v float64) { ch <- m.value(v) }
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	if r.hasSnapshot() {
		p := r.snapshotProgress()
		emit(mSnapScanned, float64(p.Scanned))
		emit(mSnapTotal, float64(p.Total))
		emit(mSnapDone, flag(p.Done))
	}
	if r.hasLive() {
		l := r.liveStats()
		emit(mLiveNotif, float64(l.Notifications))
		emit(mLiveEvents, float64(l.Events))
		emit(mLiveGaps, float64(l.Gaps))
		emit(mLiveHeals, float64(l.Heals))
		emit(mLiveDirty, float64(l.Dirty))
		emit(mMasters, float64(r.redisStats().Topology))
	}
	if r.table != nil {
		if p, ok := r.table.ScanProgress(); ok {
			emit(mTableItems, float64(p.Items))
			emit(mTableTotal, float64(p.Total))
		}
		if s, ok := r.table.StreamStats(); ok {
			emit(mStreamRecords, float64(s.Records))
			emit(mStreamAge, s.Age.Seconds())
			emit(mStreamHeals, float64(r.table.Heals()))
		}
	}
	if r.w.pub != nil {
		emitOps(ch, mPublished, r.w.pub.Stats().PublishedByOp)
	}
	emit(mDeadLettered, float64(r.deadLettered()))
	if r.w.worker != nil {
		ws := r.w.worker.Stats()
		sc := r.w.sink.counters()
		emitOps(ch, mApplied, ws.AppliedByOp)
		emitOps(ch, mSkipped, ws.SkippedByOp)
		emit(mWrites, float64(sc.writes))
		emit(mThrottles, float64(sc.throttles))
		emit(mRetries, float64(sc.retries))
		emit(mRateLimit, sc.pace)
		emit(mPaused, flag(ws.Paused))
		emit(mConcurrency, float64(ws.Concurrency))
		if e := r.end.Load(); e != nil {
			emit(mLag, float64(r.w.worker.Progress().Lag(*e, r.w.base)))
		}
		c.consumerLag(ch)
	}
	c.checkpointAges(ch)
}

// emitOps reports a count per operation, as the metric's op label.
func emitOps(ch chan<- prometheus.Metric, m *pipeMetric, c pipeline.OpCounts) {
	for _, op := range pipeline.Ops {
		ch <- m.value(float64(c.Of(op)), op.String())
	}
}

// consumerLag asks Kafka for the group's lag per partition (bounded to a
// few seconds; a scrape that cannot get it leaves it out).
func (c pipelineCollector) consumerLag(ch chan<- prometheus.Metric) {
	w := c.r.w
	cl := w.wcl
	if cl == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	end, err := kafka.EndOffsets(ctx, cl, w.cfg.Kafka.Topic)
	if err != nil {
		return
	}
	committed, err := kafka.CommittedOffsets(ctx, cl, w.cfg.Kafka.Group, w.cfg.Kafka.Topic)
	if err != nil {
		return
	}
	for p, e := range end {
		ch <- mConsumerLag.value(float64(max(0, e-committed[p])), strconv.Itoa(int(p)))
	}
}

// checkpointAges reports how long ago each checkpoint was saved: a source
// that stops saving is stuck.
func (c pipelineCollector) checkpointAges(ch chan<- prometheus.Metric) {
	fs, ok := c.r.w.store.(*checkpoint.FileStore)
	if !ok {
		return
	}
	prefix := c.r.w.cfg.Name + "/"
	names, err := fs.List(context.Background(), prefix)
	if err != nil {
		return
	}
	for _, n := range names {
		if t, err := fs.Modified(n); err == nil {
			ch <- mCheckpointAge.value(time.Since(t).Seconds(), strings.TrimPrefix(n, prefix))
		}
	}
}
