package report

import (
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/cutover/cutover/pipeline/kafka"
	"github.com/cutover/cutover/pipeline/plan"
)

// PrintReplay prints what a replay of topic for group moves: per
// partition the committed offset, where the replay starts, the end and
// how many records are applied again, then the total.
func PrintReplay(w io.Writer, topic, group string, p kafka.ReplayPlan) {
	fmt.Fprintf(w, "replay of topic %s for group %s\n  %-9s %12s %12s %12s %12s\n", topic, group, "partition", "committed", "replay from", "end", "to re-apply")
	for _, part := range slices.Sorted(maps.Keys(p.From)) {
		from, end := p.From[part], p.End[part]
		committed := "-"
		if c, ok := p.Committed[part]; ok {
			committed = plan.FormatCount(c)
		}
		fmt.Fprintf(w, "  %-9d %12s %12s %12s %12s\n", part, committed, plan.FormatCount(from), plan.FormatCount(end), plan.FormatCount(end-from))
	}
	fmt.Fprintf(w, "  %s events to apply again\n", plan.FormatCount(p.ToApply()))
}
