package plan

import (
	"strings"
	"testing"
)

// The limits name what each estimate leaves out, for its target and
// sample; a whole sample has no scaling to own up to.
func TestLimits(t *testing.T) {
	has := func(l []string, s string) bool {
		for _, x := range l {
			if strings.Contains(x, s) {
				return true
			}
		}
		return false
	}
	d := Limits(true, true, false)
	if !has(d, "write units are for an empty table") || has(d, "Redis memory") || !has(d, "with filters") || !has(d, "--full gives exact counts") {
		t.Errorf("DynamoDB target, filtered sample: %q", d)
	}
	r := Limits(false, false, true)
	if !has(r, "plus about 18 bytes and the key's length for its version, and 72 bytes per version bucket; allocator") ||
		has(r, "write units") || has(r, "with filters") || has(r, "--full") {
		t.Errorf("Redis target, whole: %q", r)
	}
}
