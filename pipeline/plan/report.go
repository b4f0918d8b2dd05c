package plan

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/cutover/cutover/pipeline"
)

// Report is what `cutover plan` prints: the preflight checks, the
// estimate of what will move and its projection. Its JSON form is the
// command's --output json.
type Report struct {
	Pipeline  string  `json:"pipeline"`
	Source    string  `json:"source"`
	Topic     string  `json:"topic"`
	Target    string  `json:"target"`
	Ready     bool    `json:"ready"`
	Preflight []Check `json:"preflight"`
	// Filters are the key filters the sample applied, as the run will.
	Filters    []string    `json:"filters,omitempty"`
	Estimate   *Estimate   `json:"estimate,omitempty"`
	Projection *Projection `json:"projection,omitempty"`
	// Limits say what the estimates leave out.
	Limits []string `json:"limits"`
	// Table is the target table, for the commands the text shows.
	Table string `json:"-"`
}

// Check is one preflight check as the report shows it.
type Check struct {
	Check  string `json:"check"`
	Status string `json:"status"` // ok or fail
	Detail string `json:"detail"` // what was found, or the fix
}

// Add lists checks in the report, in order.
func (r *Report) Add(checks ...pipeline.Check) {
	for _, c := range checks {
		if c.Err != nil {
			r.Preflight = append(r.Preflight, Check{Check: c.Name, Status: "fail", Detail: c.Err.Error()})
		} else {
			r.Preflight = append(r.Preflight, Check{Check: c.Name, Status: "ok", Detail: c.Detail})
		}
	}
}

// Failed reports whether a preflight check failed: the run cannot start
// as configured.
func (r *Report) Failed() bool {
	for _, c := range r.Preflight {
		if c.Status == "fail" {
			return true
		}
	}
	return false
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\nplan of pipeline %q: %s → kafka topic %s → %s\n", r.Pipeline, r.Source, r.Topic, r.Target)
	fmt.Fprintf(w, "\npreflight\n")
	for _, c := range r.Preflight {
		fmt.Fprintf(w, "  %-4s  %s: %s\n", c.Status, c.Check, c.Detail)
	}
	if e := r.Estimate; e != nil {
		printEstimate(w, e)
		if len(r.Filters) > 0 {
			fmt.Fprintf(w, "  %-22s %14s  %s\n", "filters", "", strings.Join(r.Filters, "; "))
		}
	}
	if pr := r.Projection; pr != nil {
		printProjection(w, r.Estimate, pr, r.Table)
	}
	if len(r.Limits) > 0 {
		fmt.Fprintf(w, "\nlimits of the estimates\n")
		for _, l := range r.Limits {
			fmt.Fprintf(w, "  - %s\n", l)
		}
	}
	if r.Ready {
		fmt.Fprintf(w, "\nready: every preflight check passed\n")
	} else {
		fmt.Fprintf(w, "\nnot ready: fix the failed checks above, then run plan again\n")
	}
}

func printEstimate(w io.Writer, e *Estimate) {
	row := func(label string, n int64, note string) {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-22s %14s  %s", label, FormatCount(n), note), " "))
	}
	how := fmt.Sprintf("a random sample of %s keys, scaled to %s", FormatCount(e.Sampled), FormatCount(e.Total))
	if e.Full {
		how = "every key: exact"
	}
	fmt.Fprintf(w, "\nwhat will move (%s)\n", how)
	types := make([]string, 0, len(e.ByType))
	for t := range e.ByType {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		row(t, e.ByType[t], "")
	}
	row("keys", e.Total, "")
	row("carried", e.Carried, "")
	row("in pieces", e.Chunked, "big keys that travel in several events")
	row("with an expiry", int64(e.TTLShare*float64(e.Total)+0.5), share(e.TTLShare, e.TTLUpper95, e.Full))
	if e.TTLShare > 0 {
		var parts []string
		for _, b := range TTLBuckets {
			parts = append(parts, fmt.Sprintf("%s %s", b.Name, FormatCount(e.TTLs[b.Name])))
		}
		fmt.Fprintf(w, "  %-22s %14s  %s\n", "  expiring in", "", strings.Join(parts, ", "))
	}
	row("not carried", e.NotCarried, share(e.NotCarriedShare, e.NotCarriedUpper95, e.Full)+" (dead-lettered)")
	for _, r := range e.Reasons {
		row("  "+r.Reason, r.Estimated, share(r.Share, r.Upper95, e.Full))
		fmt.Fprintf(w, "  %24s e.g. %q: %s\n", "", r.Example, r.ExampleDetail)
	}
	fmt.Fprintf(w, "  %-22s p50 %s, p99 %s, max %s\n", "size in kafka", FormatBytes(e.Sizes.P50), FormatBytes(e.Sizes.P99), FormatBytes(e.Sizes.Max))
	if e.ItemSizes.Max > 0 {
		fmt.Fprintf(w, "  %-22s p50 %s, p99 %s, max %s\n", "dynamodb item", FormatBytes(e.ItemSizes.P50), FormatBytes(e.ItemSizes.P99), FormatBytes(e.ItemSizes.Max))
	}
}

// share shows a share of the keys, with its 95% upper bound unless the
// count is exact.
func share(s, upper float64, full bool) string {
	if full {
		return fmt.Sprintf("%.3g%%", 100*s)
	}
	return fmt.Sprintf("%.3g%% (95%%: at most %.3g%%)", 100*s, 100*upper)
}

func printProjection(w io.Writer, e *Estimate, p *Projection, table string) {
	fmt.Fprintf(w, "\nprojection\n")
	fmt.Fprintf(w, "  %-22s %14s  %s\n", "events into kafka", FormatCount(e.Events), FormatBytes(e.KafkaBytes)+" before compression")
	fmt.Fprintf(w, "  %-22s %14s\n", "target writes", FormatCount(p.Writes))
	if p.WriteUnits > 0 {
		fmt.Fprintf(w, "  %-22s %14s  %s on demand at $%g per million\n", "dynamodb write units", FormatCount(p.WriteUnits), dollars(p.Cost), p.PricePerMillionWrites)
	}
	if e.RedisMemory > 0 {
		fmt.Fprintf(w, "  %-22s %14s  with cutover's version keys\n", "redis memory", FormatBytes(e.RedisMemory))
	}
	fmt.Fprintf(w, "  %-22s %14s  at %g writes/s\n", "time", p.Duration.String(), p.WritesPerSecond)
	if p.ProvisionedWCU > 0 {
		fmt.Fprintf(w, "  %-22s %14s  %s for %.0f h at $%g per WCU-hour, instead of on demand\n", "provisioned WCU", FormatCount(p.ProvisionedWCU),
			dollars(p.ProvisionedCost), math.Ceil(p.Duration.Hours()), p.PricePerWCUHour)
	}
	if s := p.Suggest; s != nil {
		fmt.Fprintf(w, "\nto finish within %s: %s writes/s, %d sink worker(s) (replicate plus cutover sink processes), at least %d partitions",
			s.FinishWithin, FormatCount(int64(s.WritesPerSecond)), s.Workers, s.Partitions)
		if s.WriteUnitsPerSecond > 0 {
			fmt.Fprintf(w, ", %s write units/s", FormatCount(s.WriteUnitsPerSecond))
		}
		fmt.Fprintln(w)
		if s.PreWarm > 0 {
			fmt.Fprintf(w, "  the table takes fewer write units/s at once: pre-warm it first (aws dynamodb update-table --table-name %s --warm-throughput WriteUnitsPerSecond=%d), or it throttles while DynamoDB scales out\n", table, s.PreWarm)
		}
	}
}

// dollars shows a cost to the cent, or to four digits below a dollar.
func dollars(c float64) string {
	if c < 1 {
		return fmt.Sprintf("$%.4g", c)
	}
	return fmt.Sprintf("$%.2f", c)
}

// FormatCount formats n with thousands separators.
func FormatCount(n int64) string {
	if n < 0 {
		return "-" + FormatCount(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
