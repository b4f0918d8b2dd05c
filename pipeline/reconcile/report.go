package reconcile

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Kind is a kind of difference.
type Kind string

// The kinds of difference.
const (
	Missing       Kind = "missing"        // in the source, not in the target
	Extra         Kind = "extra"          // in the target, not in the source
	Different     Kind = "different"      // value or type differs
	TTLDifferent  Kind = "ttl"            // expiry differs beyond the tolerance
	Unreadable    Kind = "unreadable"     // the target item is not in the pipeline's mapping
	Unaddressable Kind = "unaddressable"  // the key cannot be a target key (e.g. binary key, S key attribute)
	NotComparable Kind = "not-comparable" // the source could not read the key as an event (too big, unsupported type)
)

// Kinds are all the kinds of difference, in the order reports list them.
var Kinds = []Kind{Missing, Extra, Different, TTLDifferent, Unreadable, Unaddressable, NotComparable}

// Sample is one example of a difference.
type Sample struct {
	Key    string `json:"key"`
	Detail string `json:"detail"`
}

// Report is the result of a comparison.
type Report struct {
	Compared int64 `json:"compared"`
	Equal    int64 `json:"equal"`
	// Counts holds the number of keys of each kind of difference.
	Counts  map[Kind]int64    `json:"counts"`
	Samples map[Kind][]Sample `json:"samples"`
	// Cleared counts keys that differed at first sight and matched on a
	// re-check: changes that were still on their way.
	Cleared int64 `json:"cleared_on_recheck"`
	// ExtraChecked is true when the target was also walked for keys the
	// source does not have.
	ExtraChecked bool `json:"extra_checked"`
	// Fraction is the share of the keyspace read (1 for all of it);
	// DivergenceBound is, for a sample, the 95% upper confidence bound
	// on the share of all keys that differ.
	Fraction        float64 `json:"fraction"`
	DivergenceBound float64 `json:"divergence_upper_bound_95,omitempty"`
	// Repair results: events published, keys still differing after they
	// were applied (with examples), repairs past MaxRepairs not re-checked.
	Repaired         int64    `json:"repaired,omitempty"`
	Remaining        int64    `json:"remaining,omitempty"`
	RemainingSamples []Sample `json:"remaining_samples,omitempty"`
	Unverified       int64    `json:"unverified,omitempty"`
	// RepairSkipped counts differences no event can repair (e.g. an
	// empty key in the target); RemainingSamples shows them.
	RepairSkipped int64 `json:"repair_skipped,omitempty"`
	// RepairDeferred counts differences left unrepaired because no
	// version was safe for the repair (Options.ClockReads): the next run
	// checks them again. RemainingSamples shows them.
	RepairDeferred int64         `json:"repair_deferred,omitempty"`
	Elapsed        time.Duration `json:"elapsed_ns"`
}

// Differences is the number of keys that do not match.
func (r *Report) Differences() int64 {
	var n int64
	for k, c := range r.Counts {
		if k != NotComparable {
			n += c
		}
	}
	return n
}

// Unresolved is the number of keys that still differ at the end of the
// run: the differences, or after a repair the keys it did not fix.
func (r *Report) Unresolved() int64 {
	if r.Repaired == 0 {
		return r.Differences()
	}
	// Repaired keys count once they are verified; those past MaxRepairs
	// are not known to be fixed.
	return r.Differences() - r.Repaired + r.Remaining + r.Unverified
}

// DisplayKey is a key as a report shows it: as it is when it is UTF-8
// text (a DynamoDB item's key is its DynamoDB JSON), otherwise quoted
// with Go escapes ("\xff").
func DisplayKey(key []byte) string {
	if utf8.Valid(key) {
		return string(key)
	}
	return strconv.Quote(string(key))
}

// UpperBound95 is the 95% upper confidence bound on the share of keys
// that differ, from differences found among compared sampled keys:
// the rule of three when none differ, the Wilson score bound otherwise.
func UpperBound95(compared, differences int64) float64 {
	if compared <= 0 {
		return 1
	}
	n := float64(compared)
	if differences == 0 {
		return min(1, 3/n)
	}
	const z = 1.959964
	p := float64(differences) / n
	center := p + z*z/(2*n)
	margin := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n))
	return min(1, (center+margin)/(1+z*z/n))
}
