package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/pipeline/reconcile"
)

// Reconcile holds the results of reconcile's comparisons, for shadow
// validation during a cutover (reconcile --every).
type Reconcile struct {
	rounds      prometheus.Counter
	compared    prometheus.Counter
	differences *prometheus.GaugeVec
	divergence  prometheus.Gauge
	bound       prometheus.Gauge
	cleared     prometheus.Counter
	repaired    prometheus.Counter
	last        prometheus.Gauge
}

// NewReconcile makes reconcile's metrics.
func NewReconcile() *Reconcile {
	f := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "cutover", Subsystem: "reconcile", Name: name, Help: help}
	}
	return &Reconcile{
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

// Collectors are the metrics, to serve.
func (m *Reconcile) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.rounds, m.compared, m.differences, m.divergence, m.bound, m.cleared, m.repaired, m.last}
}

// Observe records a finished round; nil metrics record nothing.
func (m *Reconcile) Observe(rep *reconcile.Report) {
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
