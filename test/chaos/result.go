package chaos

import (
	"fmt"
	"time"
)

// Result is what a chaos scenario proves, or fails to: one line of the
// chaos table of docs/guarantees.md.
type Result struct {
	Scenario string
	Faults   int
	Events   int64
	Keys     int
	// Lost: in the source, not in the target. Resurrected: in the target
	// though deleted (or expired) in the source, or brought back after a
	// delete during the run. Regressions: a key seen going backwards in
	// the target during the run, or older than the source's at the end.
	// Differences: any other difference of type, value or expiry at the
	// end.
	Lost, Resurrected, Regressions, Differences int64
	// Watched says what the regression monitor read: without it, the
	// regressions column is not measured and the result is not OK.
	Watched  string
	Examples []string
	Took     time.Duration
}

// OK is true when the scenario kept every guarantee and its regressions
// were measured.
func (r Result) OK() bool {
	return r.Lost == 0 && r.Resurrected == 0 && r.Regressions == 0 && r.Differences == 0 && r.Watched != ""
}

// AddMonitor counts what a NotifyMonitor saw. A monitor that failed is
// returned as an error: its count is not a measurement.
func (r *Result) AddMonitor(m MonitorReport) error {
	r.Regressions += m.Regressions
	r.Examples = append(r.Examples, m.Examples...)
	if m.Err != nil || m.Unparsed > 0 {
		return fmt.Errorf("the regression monitor failed, its count is not a measurement: %s", m)
	}
	r.Watched = fmt.Sprintf("monitor: %d notifications, %d reads of %d keys", m.Notifications, m.Reads, m.Keys)
	return nil
}

// AddStream counts what CheckStream found in a target's stream. A check
// that failed is returned as an error: its counts are not a measurement.
func (r *Result) AddStream(s StreamReport, err error) error {
	r.Regressions += s.Regressions
	r.Resurrected += s.Resurrected
	r.Examples = append(r.Examples, s.Examples...)
	if err != nil {
		return fmt.Errorf("the target's stream could not be checked, its count is not a measurement: %w\n%s", err, s)
	}
	if s.Unparsed > 0 {
		return fmt.Errorf("the target's stream holds values without a sequence number, its count is not a measurement:\n%s", s)
	}
	r.Watched = fmt.Sprintf("stream: %d records of %d keys in %d shards", s.Records, s.Keys, s.Shards)
	return nil
}

// AddDiff counts what a final comparison found.
func (r *Result) AddDiff(d Diff) {
	r.Lost += int64(d.Lost)
	r.Resurrected += int64(d.Resurrected)
	r.Regressions += int64(d.Older)
	r.Differences += int64(d.Different)
	r.note(d.Examples...)
}

func (r *Result) note(examples ...string) {
	for _, e := range examples {
		if len(r.Examples) < 20 {
			r.Examples = append(r.Examples, e)
		}
	}
}

// Note adds an example (a failed check) to the result.
func (r *Result) Note(format string, args ...any) { r.note(fmt.Sprintf(format, args...)) }

func (r Result) String() string {
	return fmt.Sprintf("chaos %-24s faults=%-3d events=%-8d keys=%-7d lost=%d regressions=%d resurrected=%d differences=%d (%s); %s",
		r.Scenario, r.Faults, r.Events, r.Keys, r.Lost, r.Regressions, r.Resurrected, r.Differences, r.Took.Round(time.Second), r.Watched)
}
