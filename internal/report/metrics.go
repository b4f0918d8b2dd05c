package report

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/pipeline"
)

// stalled is how long a sink worker may go without polling Kafka before
// /readyz reports it.
const stalled = 2 * time.Minute

// Ready is /readyz: the connections were made (the server starts after
// them), the publisher, if any, works, a Redis source follows at least one
// node, and the sink worker, if any, polls Kafka.
func (r *Reporter) Ready() error {
	if r.s.Publisher != nil {
		if err := r.s.Publisher.Err(); err != nil {
			return fmt.Errorf("publishing to Kafka failed: %w", err)
		}
	}
	if st := r.redisStats(); st.HasLive && st.Nodes == 0 {
		return errors.New("the Redis source follows no node")
	}
	if r.s.Worker == nil {
		return nil
	}
	last := r.s.Worker.LastPoll()
	switch {
	case last.IsZero():
		return errors.New("the sink worker has not polled Kafka yet")
	case time.Since(last) > stalled:
		return fmt.Errorf("the sink worker last polled Kafka %s ago", time.Since(last).Round(time.Second))
	}
	return nil
}

// Collector exposes the run's counters as the Prometheus metrics of
// metrics.Pipeline.
func (r *Reporter) Collector() prometheus.Collector { return collector{r} }

// collector reads the same counters the progress log and the summary
// read, at scrape time, so nothing is counted twice.
type collector struct {
	r *Reporter
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range metrics.Pipeline {
		ch <- m.Desc()
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
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
	if t := r.s.Table; t != nil {
		if p, ok := t.ScanProgress(); ok {
			emit(metrics.TableItems, float64(p.Items))
			emit(metrics.TableTotal, float64(p.Total))
		}
		if s, ok := t.StreamStats(); ok {
			emit(metrics.StreamRecords, float64(s.Records))
			emit(metrics.StreamAge, s.Age.Seconds())
			emit(metrics.StreamHeals, float64(t.Heals()))
		}
	}
	if r.s.Publisher != nil {
		emitOps(ch, metrics.Published, r.s.Publisher.Stats().PublishedByOp)
	}
	emit(metrics.DeadLettered, float64(r.deadLettered()))
	if r.s.Worker != nil {
		ws := r.s.Worker.Stats()
		sc := r.s.Sink.Counters()
		emitOps(ch, metrics.SinkApplied, ws.AppliedByOp)
		emitOps(ch, metrics.SinkSkipped, ws.SkippedByOp)
		emit(metrics.SinkWrites, float64(sc.Writes))
		emit(metrics.SinkThrottles, float64(sc.Throttles))
		emit(metrics.SinkRetries, float64(sc.Retries))
		emit(metrics.SinkRateLimit, sc.Pace)
		emit(metrics.SinkPaused, flag(ws.Paused))
		emit(metrics.SinkConcurrency, float64(ws.Concurrency))
		if e := r.end.Load(); e != nil {
			emit(metrics.SinkLag, float64(r.s.Worker.Progress().Lag(*e, r.s.Base)))
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
func (c collector) consumerLag(ch chan<- prometheus.Metric) {
	if c.r.s.Offsets == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	end, committed, err := c.r.s.Offsets.Offsets(ctx)
	if err != nil {
		return
	}
	for p, e := range end {
		ch <- metrics.ConsumerLag.Value(float64(max(0, e-committed[p])), strconv.Itoa(int(p)))
	}
}

// checkpointAges reports how long ago each checkpoint was saved: a source
// that stops saving is stuck.
func (c collector) checkpointAges(ch chan<- prometheus.Metric) {
	cs := c.r.s.Checkpoints
	if cs == nil {
		return
	}
	prefix := c.r.cfg.Name + "/"
	names, err := cs.List(context.Background(), prefix)
	if err != nil {
		return
	}
	for _, n := range names {
		if t, err := cs.Modified(n); err == nil {
			ch <- metrics.CheckpointAge.Value(time.Since(t).Seconds(), strings.TrimPrefix(n, prefix))
		}
	}
}
