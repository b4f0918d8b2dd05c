package report

import (
	"fmt"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/plan"
)

// opSplit says how many of a count were upserts, deletes and truncates.
func opSplit(c pipeline.OpCounts) string {
	return fmt.Sprintf("%s upserts, %s deletes, %s truncates", plan.FormatCount(c.Upserts), plan.FormatCount(c.Deletes), plan.FormatCount(c.Truncates))
}
