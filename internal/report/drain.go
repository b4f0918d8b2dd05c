package report

import (
	"fmt"
	"io"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/pipeline/kafka"
	"github.com/cutover/cutover/pipeline/plan"
	redissrc "github.com/cutover/cutover/sources/redis"
)

// Drain is what `cutover drain` prints.
type Drain struct {
	kafka.DrainStatus
	Pipeline string  `json:"pipeline"`
	Topic    string  `json:"topic"`
	Group    string  `json:"group"`
	TookSecs float64 `json:"took_seconds"`
	// Problem says why the drain did not finish ("" when it did).
	Problem string `json:"problem,omitempty"`
}

// DrainProblem says what a drain of cfg's pipeline that did not finish
// waits for: the source's barriers, or the sink group.
func DrainProblem(cfg *config.Config, st kafka.DrainStatus) string {
	if st.Expected == 0 || st.Barriers < st.Expected {
		hint := ""
		if cfg.SourceKind() == "redis" {
			hint = fmt.Sprintf(" and its Redis user may use channel %s", redissrc.DrainChannel(cfg.Name))
		}
		return fmt.Sprintf("no drain barrier from the source on partitions %s (requests sent: %d, on topic %s): "+
			"is `cutover replicate` of pipeline %q running (not a backfill)%s? Its log says why it did not answer",
			st.Missing(), st.Requests, kafka.ControlTopic(cfg.Kafka.Topic), cfg.Name, hint)
	}
	var behind int64
	for _, p := range st.Partitions {
		if !p.CaughtUp {
			behind += p.Lag
		}
	}
	return fmt.Sprintf("the sink group %s has not applied everything up to the barriers: %d of %d partitions caught up, %s records to go "+
		"(are its workers running? the report shows who owns each partition)", cfg.Kafka.Group, st.CaughtUp, len(st.Partitions), plan.FormatCount(behind))
}

// PrintDrain prints rep as text; its Problem is left to the command's
// error, on stderr.
func PrintDrain(w io.Writer, rep Drain) {
	took := time.Duration(rep.TookSecs * float64(time.Second)).Round(time.Millisecond)
	if rep.Done {
		fmt.Fprintf(w, "drained in %v: every change the source had seen when drain started is applied (pipeline %s, %d partitions, drain %s)\n",
			took, rep.Pipeline, len(rep.Partitions), rep.ID)
		return
	}
	fmt.Fprintf(w, "NOT drained after %v: %d of %d partitions caught up (pipeline %s, group %s, drain %s)\n",
		took, rep.CaughtUp, len(rep.Partitions), rep.Pipeline, rep.Group, rep.ID)
	fmt.Fprintf(w, "\n  %-10s %14s %14s %10s  %s\n", "partition", "barrier", "committed", "lag", "owner")
	for _, p := range rep.Partitions {
		barrier, committed, owner := plan.FormatCount(p.Barrier), plan.FormatCount(p.Committed), p.Owner
		switch {
		case p.Target < 0:
			barrier = "none yet"
		case p.Barrier < 0:
			barrier = "(no events)"
		}
		if p.Committed < 0 {
			committed = "-"
		}
		if owner == "" {
			owner = "(no worker)"
		}
		if p.CaughtUp {
			owner += "  caught up"
		}
		fmt.Fprintf(w, "  %-10d %14s %14s %10s  %s\n", p.Partition, barrier, committed, plan.FormatCount(p.Lag), owner)
	}
}

// DrainProgress prints a drain's progress when it changes, and otherwise
// every interval. The zero value is ready to use.
type DrainProgress struct {
	printed        time.Time
	barriers, done int
}

// Print prints st, elapsed into the drain, if it changed or every has
// passed since the last line.
func (l *DrainProgress) Print(w io.Writer, st kafka.DrainStatus, elapsed, every time.Duration) {
	changed := st.Barriers != l.barriers || st.CaughtUp != l.done
	if !changed && (every <= 0 || time.Since(l.printed) < every) {
		return
	}
	l.printed, l.barriers, l.done = time.Now(), st.Barriers, st.CaughtUp
	barriers := "waiting for the source's barriers"
	if st.Expected > 0 {
		barriers = fmt.Sprintf("barriers %d/%d", st.Barriers, st.Expected)
	}
	fmt.Fprintf(w, "drain: %s, partitions caught up %d/%d (%v)\n", barriers, st.CaughtUp, len(st.Partitions), elapsed.Round(time.Second))
}
