package reconcile

import (
	"fmt"
	"time"

	"github.com/cutover/cutover/pipeline"
)

// classify compares the source's state of a key (an upsert or a delete
// event) with the target's; "" means equal.
func (u *run) classify(e *pipeline.Event, f Found, addressable bool) (Kind, string) {
	if e.Op == pipeline.OpUpsert && expiring(e.ExpireAt, u.opts.TTLTolerance) {
		// Its time has come: it is gone, whatever the source still shows.
		// Redis removes an expired key at once; DynamoDB's TTL deletes an
		// expired item when it gets to it, days later at worst.
		if addressable && f.Exists && !expiring(f.ExpireAt, u.opts.TTLTolerance) {
			return Extra, fmt.Sprintf("expired in the source at %s, in the target without that expiry", e.ExpireAt.UTC().Format(time.RFC3339))
		}
		return "", ""
	}
	if e.Op != pipeline.OpUpsert {
		// A target item whose expiry has come is gone too, even while
		// DynamoDB's TTL has not removed it yet.
		if addressable && f.Exists && !expiring(f.ExpireAt, u.opts.TTLTolerance) {
			return Extra, "in the target, not in the source"
		}
		return "", ""
	}
	want, werr := expected(u.tgt, e)
	switch {
	case werr != nil:
		return Unaddressable, werr.Error()
	case !addressable:
		return Unaddressable, "the key cannot be written to the target as configured"
	case !f.Exists:
		return Missing, fmt.Sprintf("%s in the source, absent in the target", e.Value.Type)
	case f.Err != nil:
		return Unreadable, f.Err.Error()
	}
	if d := pipeline.Diff(&want, &f.Value); d != "" {
		return Different, d
	}
	if d := ttlDiff(e.ExpireAt, f.ExpireAt, u.opts.TTLTolerance); d != "" {
		return TTLDifferent, d
	}
	return "", ""
}

// expiring reports whether an expiry has come, or comes within tol (a key
// that expires while it is compared counts as gone on both sides).
func expiring(at time.Time, tol time.Duration) bool {
	return !at.IsZero() && time.Until(at) < tol
}

// expected is the value the target should hold for e.
func expected(tgt Target, e *pipeline.Event) (pipeline.Value, error) {
	if x, ok := tgt.(Expecter); ok {
		return x.Expect(e)
	}
	return e.Value, nil
}

func ttlDiff(src, tgt time.Time, tolerance time.Duration) string {
	switch {
	case src.IsZero() && tgt.IsZero():
		return ""
	case src.IsZero():
		return fmt.Sprintf("no expiry in the source, expires %s in the target", tgt.UTC().Format(time.RFC3339))
	case tgt.IsZero():
		return fmt.Sprintf("expires %s in the source, never in the target", src.UTC().Format(time.RFC3339))
	}
	if d := src.Sub(tgt); d > tolerance || d < -tolerance {
		return fmt.Sprintf("expires %s in the source, %s in the target", src.UTC().Format(time.RFC3339Nano), tgt.UTC().Format(time.RFC3339))
	}
	return ""
}
