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
	"github.com/cutover/cutover/internal/metrics"
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
	return metrics.Serve(ctx, w.cfg.MetricsAddr, w.cfg.Name, w.log, rep.ready, cs...)
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

func (c pipelineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range metrics.Pipeline {
		ch <- m.Desc()
	}
}

func (c pipelineCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	emit := func(m *metrics.Metric, v float64) { ch <- m.Value(v) }
	flag := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	if r.hasSnapshot() {
		p := r.snapshotProgress()
		emit(metrics.SnapshotScanned, float64(p.Scanned))
		emit(metrics.SnapshotKeys, float64(p.Total))
		emit(metrics.SnapshotDone, flag(p.Done))
	}
	if r.hasLive() {
		l := r.liveStats()
		emit(metrics.LiveNotifications, float64(l.Notifications))
		emit(metrics.LiveEvents, float64(l.Events))
		emit(metrics.LiveGaps, float64(l.Gaps))
		emit(metrics.LiveHeals, float64(l.Heals))
		emit(metrics.LiveDirty, float64(l.Dirty))
		emit(metrics.MastersChanged, float64(r.redisStats().Topology))
	}
	if r.table != nil {
		if p, ok := r.table.ScanProgress(); ok {
			emit(metrics.TableItems, float64(p.Items))
			emit(metrics.TableTotal, float64(p.Total))
		}
		if s, ok := r.table.StreamStats(); ok {
			emit(metrics.StreamRecords, float64(s.Records))
			emit(metrics.StreamAge, s.Age.Seconds())
			emit(metrics.StreamHeals, float64(r.table.Heals()))
		}
	}
	if r.w.pub != nil {
		emitOps(ch, metrics.Published, r.w.pub.Stats().PublishedByOp)
	}
	emit(metrics.DeadLettered, float64(r.deadLettered()))
	if r.w.worker != nil {
		ws := r.w.worker.Stats()
		sc := r.w.sink.counters()
		emitOps(ch, metrics.SinkApplied, ws.AppliedByOp)
		emitOps(ch, metrics.SinkSkipped, ws.SkippedByOp)
		emit(metrics.SinkWrites, float64(sc.writes))
		emit(metrics.SinkThrottles, float64(sc.throttles))
		emit(metrics.SinkRetries, float64(sc.retries))
		emit(metrics.SinkRateLimit, sc.pace)
		emit(metrics.SinkPaused, flag(ws.Paused))
		emit(metrics.SinkConcurrency, float64(ws.Concurrency))
		if e := r.end.Load(); e != nil {
			emit(metrics.SinkLag, float64(r.w.worker.Progress().Lag(*e, r.w.base)))
		}
		c.consumerLag(ch)
	}
	c.checkpointAges(ch)
}

// emitOps reports a count per operation, as the metric's op label.
func emitOps(ch chan<- prometheus.Metric, m *metrics.Metric, c pipeline.OpCounts) {
	for _, op := range pipeline.Ops {
		ch <- m.Value(float64(c.Of(op)), op.String())
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
		ch <- metrics.ConsumerLag.Value(float64(max(0, e-committed[p])), strconv.Itoa(int(p)))
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
			ch <- metrics.CheckpointAge.Value(time.Since(t).Seconds(), strings.TrimPrefix(n, prefix))
		}
	}
}
