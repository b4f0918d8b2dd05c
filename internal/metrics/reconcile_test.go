package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/pipeline/reconcile"
)

// A round sets the divergence from what differed after re-checks; a
// sampled round's bound is the report's, a full round's the ratio itself.
func TestReconcileObserve(t *testing.T) {
	var none *Reconcile
	none.Observe(&reconcile.Report{}) // without --every: records nothing

	m := NewReconcile()
	m.Observe(&reconcile.Report{Compared: 200, Fraction: 0.5, DivergenceBound: 0.07,
		Counts: map[reconcile.Kind]int64{reconcile.Missing: 4, reconcile.NotComparable: 6}})
	got := gather(t, m)
	if v := got["cutover_reconcile_divergence_ratio"]; v != 0.02 {
		t.Errorf("divergence = %v, want 0.02 (not-comparable keys are not differences)", v)
	}
	if v := got["cutover_reconcile_divergence_upper_bound"]; v != 0.07 {
		t.Errorf("bound of a sample = %v, want the report's 0.07", v)
	}
	m.Observe(&reconcile.Report{Compared: 100, Fraction: 1, Counts: map[reconcile.Kind]int64{reconcile.Extra: 1}})
	got = gather(t, m)
	if v := got["cutover_reconcile_divergence_upper_bound"]; v != 0.01 {
		t.Errorf("bound of a full round = %v, want its ratio 0.01", v)
	}
	if v := got["cutover_reconcile_rounds_total"]; v != 2 {
		t.Errorf("rounds = %v, want 2", v)
	}
	if v := got["cutover_reconcile_differences{kind=missing}"]; v != 0 {
		t.Errorf("missing = %v, want the last round's 0", v)
	}
	if v := got["cutover_reconcile_differences{kind=extra}"]; v != 1 {
		t.Errorf("extra = %v, want 1", v)
	}
}

// gather reads the metrics' values by name, a labeled one as
// name{label=value}.
func gather(t *testing.T, m *Reconcile) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			name := f.GetName()
			for _, l := range s.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			out[name] = s.GetCounter().GetValue() + s.GetGauge().GetValue()
		}
	}
	return out
}
