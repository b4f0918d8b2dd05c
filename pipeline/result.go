package pipeline

import "fmt"

// Outcome is what a sink did with one event.
type Outcome uint8

const (
	// Applied means the target now holds the event's state.
	Applied Outcome = iota + 1
	// SkippedOlder means the target already held this version or a newer one
	// (a duplicate, a replay, or a late snapshot read), so nothing changed.
	SkippedOlder
	// Rejected means the event can never be applied as configured (it is too
	// large for the target, its key cannot be mapped, …). The worker sends
	// it to the dead-letter topic with Result.Err and moves on.
	Rejected
)

func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case SkippedOlder:
		return "skipped-older"
	case Rejected:
		return "rejected"
	default:
		return fmt.Sprintf("outcome(%d)", uint8(o))
	}
}

// Result is the outcome of one event; Err explains a Rejected one.
type Result struct {
	Outcome Outcome
	Err     error
}
