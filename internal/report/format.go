package report

import (
	"fmt"

	"github.com/cutover/cutover/pipeline"
)

// Group formats n with thousands separators.
func Group(n int64) string {
	if n < 0 {
		return "-" + Group(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// opSplit says how many of a count were upserts, deletes and truncates.
func opSplit(c pipeline.OpCounts) string {
	return fmt.Sprintf("%s upserts, %s deletes, %s truncates", Group(c.Upserts), Group(c.Deletes), Group(c.Truncates))
}
