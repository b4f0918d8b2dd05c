package clidocs

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric is one metric cutover serves, as the metrics page lists it.
type Metric struct {
	Name string
	// Kind is counter, gauge or histogram.
	Kind   string
	Help   string
	Labels []string
}

// Describe describes collectors as a registry gathers them, in the
// registry's (name) order. A vector shows its labels only once it has a
// child: observe a value first.
func Describe(cs ...prometheus.Collector) ([]Metric, error) {
	reg := prometheus.NewRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	fams, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	out := make([]Metric, 0, len(fams))
	for _, f := range fams {
		d := Metric{Name: f.GetName(), Kind: strings.ToLower(f.GetType().String()), Help: f.GetHelp()}
		if ms := f.GetMetric(); len(ms) > 0 {
			for _, l := range ms[0].GetLabel() {
				d.Labels = append(d.Labels, l.GetName())
			}
		}
		out = append(out, d)
	}
	return out, nil
}

func metricsPage(pipe, rec []Metric) []byte {
	var b strings.Builder
	b.WriteString(Mark)
	b.WriteString(`# Metrics reference

Served on ` + "`/metrics`" + ` at ` + "`--metrics-addr`" + ` (` + "`metrics_addr`" + `). Every metric below also
carries the label ` + "`pipeline`" + `, the pipeline's name. The Go and process
metrics of the Prometheus client (` + "`go_*`, `process_*`" + `) are served too. What to
watch and alert on: [operations](../operations.md#what-to-watch).
`)
	table := func(title, intro string, ms []Metric) {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n| metric | type | labels | meaning |\n|---|---|---|---|\n", title, intro)
		for _, m := range ms {
			labels := ""
			if len(m.Labels) > 0 {
				labels = "`" + strings.Join(m.Labels, "`, `") + "`"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", m.Name, m.Kind, labels, cell(m.Help))
		}
	}
	table("backfill, replicate, sink, replay",
		"The counters the progress log and the summary print, read when Prometheus scrapes; each appears once its stage runs (a snapshot's with a snapshot, a sink's with a sink worker). The consumer group's lag is asked of Kafka at scrape time.", pipe)
	table("reconcile --every", "The results of the last comparison round (shadow validation).", rec)
	return []byte(b.String())
}
