package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cutover/cutover/pipeline/reconcile"
)

// reconcileMetrics are the results of reconcile's comparisons, for shadow
// validation during a cutover (reconcile --every).
type reconcileMetrics struct {
	rounds      prometheus.Counter
	compared    prometheus.Counter
	differences *prometheus.GaugeVec
	divergence  prometheus.Gauge
	bound       prometheus.Gauge
	cleared     prometheus.Counter
	repaired    prometheus.Counter
	last        prometheus.Gauge
}

// newReconcileMetrics makes reconcile's metrics.
func newReconcileMetrics() *reconcileMetrics {
	f := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "cutover", Subsystem: "reconcile", Name: name, Help: help}
	}
	return &reconcileMetrics{
		rounds:   prometheus.NewCounter(prometheus.CounterOpts(f("rounds_total", "Comparisons completed."))),
		compared: prometheus.NewCounter(prometheus.CounterOpts(f("keys_compared_total", "Keys compared, over all rounds."))),
		differences: prometheus.NewGaugeVec(prometheus.GaugeOpts(f("differences",
			"Keys that differed in the last round after re-checks, by kind.")), []string{"kind"}),
		divergence: prometheus.NewGauge(prometheus.GaugeOpts(f("divergence_ratio",
			"Share of the compared keys that differed in the last round."))),
		bound: prometheus.NewGauge(prometheus.GaugeOpts(f("divergence_upper_bound",
			"95% upper confidence bound on the share of all keys that differ, from the last round's sample (for a full round, the ratio itself)."))),
		cleared:  prometheus.NewCounter(prometheus.CounterOpts(f("cleared_on_recheck_total", "Differences that cleared on a re-check (changes in flight)."))),
		repaired: prometheus.NewCounter(prometheus.CounterOpts(f("repaired_total", "Repair events published."))),
		last:     prometheus.NewGauge(prometheus.GaugeOpts(f("last_round_timestamp_seconds", "When the last round finished."))),
	}
}

func (m *reconcileMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.rounds, m.compared, m.differences, m.divergence, m.bound, m.cleared, m.repaired, m.last}
}

// serveMetrics serves, on addr until ctx ends: /metrics with the given
// collectors, labeled pipeline=<name> (and Go and process metrics); /healthz, 200 while the
// process runs; /readyz, 200 while ready returns nil (nil: always), else
// 503 with the reason.
func serveMetrics(ctx context.Context, addr, pipeline string, log *slog.Logger, ready func() error, cs ...prometheus.Collector) error {
	reg := prometheus.NewRegistry()
	// Every cutover metric carries its pipeline's name, so one dashboard
	// can show several pipelines without relabeling.
	prometheus.WrapRegistererWith(prometheus.Labels{"pipeline": pipeline}, reg).MustRegister(cs...)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr %s: %w (choose a free port)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("serving metrics and health checks", "addr", ln.Addr().String(), "paths", "/metrics /healthz /readyz")
	return nil
}

// observe records a finished round; nil metrics record nothing.
func (m *reconcileMetrics) observe(rep *reconcile.Report) {
	if m == nil {
		return
	}
	m.rounds.Inc()
	m.compared.Add(float64(rep.Compared))
	for _, k := range reconcile.Kinds {
		m.differences.WithLabelValues(string(k)).Set(float64(rep.Counts[k]))
	}
	ratio := 0.0
	if rep.Compared > 0 {
		ratio = float64(rep.Differences()) / float64(rep.Compared)
	}
	m.divergence.Set(ratio)
	if rep.Fraction < 1 {
		m.bound.Set(rep.DivergenceBound)
	} else {
		m.bound.Set(ratio)
	}
	m.cleared.Add(float64(rep.Cleared))
	m.repaired.Add(float64(rep.Repaired))
	m.last.SetToCurrentTime()
}
