package main

import (
	"context"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/report"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/kafka"
)

// reporter is the progress reporter of a run over w's stages, with the
// source src that runs here, if any. A stage w did not connect is left
// out, not handed in as a typed nil.
func (w *wiring) reporter(start time.Time, src source) *report.Reporter {
	var s report.Stages
	if w.pub != nil {
		s.Publisher = w.pub
	}
	if w.worker != nil {
		s.Worker, s.Base = w.worker, w.base
	}
	if w.sink != nil {
		s.Sink = sinkReport{w.sink}
	}
	if w.wcl != nil {
		s.Offsets = groupOffsets{cl: w.wcl, topic: w.cfg.Kafka.Topic, group: w.cfg.Kafka.Group}
	}
	s.Checkpoints, _ = w.store.(report.CheckpointTimes)
	s.Redis, _ = src.(report.RedisSource)
	s.Table, _ = src.(report.TableSource)
	return report.New(w.cfg, w.log, s, start)
}

// summary prints what the run did and returns exitDeadLettered if any key
// was not copied.
func summary(rep *report.Reporter, out io.Writer, what string) error {
	if rep.Summary(out, what, time.Since(rep.Start())) > 0 {
		return &exitError{code: exitDeadLettered}
	}
	return nil
}

// serveMetrics serves the pipeline's metrics and health checks when
// --metrics-addr is set.
func (w *wiring) serveMetrics(ctx context.Context, rep *report.Reporter) error {
	if w.cfg.MetricsAddr == "" {
		return nil
	}
	cs := []prometheus.Collector{rep.Collector()}
	if w.e2eLag != nil {
		cs = append(cs, w.e2eLag)
	}
	return metrics.Serve(ctx, w.cfg.MetricsAddr, w.cfg.Name, w.log, rep.Ready, cs...)
}

// sinkReport is a target sink as the reporter reads it.
type sinkReport struct{ s targetSink }

func (r sinkReport) Describe() string { return r.s.describe() }

func (r sinkReport) Counters() report.SinkCounters {
	c := r.s.counters()
	return report.SinkCounters{Writes: c.writes, Throttles: c.throttles, Retries: c.retries, Swept: c.swept, Pace: c.pace}
}

// groupOffsets reads the sink group's offsets in the pipeline's topic.
type groupOffsets struct {
	cl           *kgo.Client
	topic, group string
}

func (g groupOffsets) Offsets(ctx context.Context) (end, committed map[int32]int64, err error) {
	if end, err = kafka.EndOffsets(ctx, g.cl, g.topic); err != nil {
		return nil, nil, err
	}
	committed, err = kafka.CommittedOffsets(ctx, g.cl, g.group, g.topic)
	return end, committed, err
}

// group formats n with thousands separators.

func filterOf(r config.RedisSourceConfig) pipeline.KeyFilter {
	return pipeline.KeyFilter{Include: r.Include, Exclude: r.Exclude}
}
