package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/pipeline/plan"
	"github.com/cutover/cutover/pipeline/reconcile"
)

// kindLabels name the kinds of difference in the text report.
var kindLabels = map[reconcile.Kind]string{
	reconcile.Missing:       "missing in target",
	reconcile.Extra:         "only in target",
	reconcile.Different:     "different value or type",
	reconcile.TTLDifferent:  "different expiry",
	reconcile.Unreadable:    "unreadable in target",
	reconcile.Unaddressable: "key not valid in target",
	reconcile.NotComparable: "not comparable (source)",
}

// PrintReconcile prints the text report of one comparison of the
// pipeline cfg's source with target (named as Sink.Describe names it).
func PrintReconcile(w io.Writer, cfg *config.Config, target string, rep *reconcile.Report) {
	fmt.Fprintf(w, "\nreconcile %s → %s (%s)\n", cfg.DescribeSource(), target, rep.Elapsed.Round(time.Millisecond))
	line := func(label string, n int64, note string) {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-26s %12s  %s", label, plan.FormatCount(n), note), " "))
	}
	sampled := ""
	if rep.Fraction < 1 {
		sampled = fmt.Sprintf("a random sample of %.3g%% of the keys", 100*rep.Fraction)
	}
	line("keys compared", rep.Compared, sampled)
	line("equal", rep.Equal, "")
	line("cleared on re-check", rep.Cleared, "differed at first, matched when read again (changes in flight)")
	for _, k := range reconcile.Kinds {
		note := ""
		if k == reconcile.Extra && !rep.ExtraChecked {
			note = "not looked for (a sample, or a target that cannot list its keys)"
		}
		line(kindLabels[k], rep.Counts[k], note)
	}
	if rep.Repaired > 0 || rep.RepairSkipped > 0 || rep.RepairDeferred > 0 {
		line("repaired", rep.Repaired, "published into the pipeline and applied")
		line("still different", rep.Remaining, "after the repairs were applied")
		if rep.RepairSkipped > 0 {
			line("not repairable", rep.RepairSkipped, "no event can carry the repair (see below)")
		}
		if rep.RepairDeferred > 0 {
			line("repairs deferred", rep.RepairDeferred, "no safe version now (see below): run reconcile again")
		}
		if rep.Unverified > 0 {
			line("repairs not re-checked", rep.Unverified, "past the re-check limit: run reconcile again")
		}
	}
	for _, k := range reconcile.Kinds {
		printSamples(w, kindLabels[k], rep.Samples[k])
	}
	printSamples(w, "still different after repair", rep.RemainingSamples)
	switch {
	case rep.Unresolved() == 0 && (rep.Repaired > 0 || rep.RepairSkipped > 0):
		fmt.Fprintf(w, "\nrepaired: the target now holds every compared key with the source's value and expiry\n")
	case rep.Unresolved() == 0:
		fmt.Fprintf(w, "\nthe target holds every compared key with the same value and expiry\n")
	default:
		fmt.Fprintf(w, "\n%s keys differ (cutover reconcile --repair publishes the source's state of each into the pipeline)\n", plan.FormatCount(rep.Unresolved()))
	}
	if rep.Fraction < 1 {
		fmt.Fprintf(w, "with 95%% confidence, at most %.4g%% of all keys differ (from %s sampled keys)\n", 100*rep.DivergenceBound, plan.FormatCount(rep.Compared))
	}
	if n := UnreadableItems(cfg, rep); n > 0 {
		fmt.Fprintf(w, "%s items of the table are not in cutover's Redis mapping, so the target lacks them: fix them in the table (the dead-letter topic and the samples above say why), then run reconcile again\n", plan.FormatCount(n))
	}
}

func printSamples(w io.Writer, label string, samples []reconcile.Sample) {
	if len(samples) == 0 {
		return
	}
	fmt.Fprintf(w, "\n  %s, for example:\n", label)
	slices.SortFunc(samples, func(a, b reconcile.Sample) int { return strings.Compare(a.Key, b.Key) })
	for _, s := range samples {
		fmt.Fprintf(w, "    %q: %s\n", s.Key, s.Detail)
	}
}

// UnreadableItems counts, for a table read as Redis keys (format redis),
// the items it cannot read back: the application wrote them after the
// switch, so they are changes the Redis target lacks, not keys the
// pipeline cannot carry; they fail the gate.
func UnreadableItems(cfg *config.Config, rep *reconcile.Report) int64 {
	if cfg.SourceKind() != "dynamodb" || cfg.SourceItems() {
		return 0
	}
	return rep.Counts[reconcile.NotComparable]
}
