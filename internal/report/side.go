package report

import (
	"fmt"
	"time"
)

// side is how far one side of a run is: the read (keys or items read of
// the store's count) or the apply (events the sink finished of those
// published and still to be read).
type side struct {
	done, total int64
	finished    bool
}

// pct is done of total in percent ("" when the total is unknown).
func (s side) pct() string {
	if s.total <= 0 {
		return ""
	}
	return fmt.Sprintf("%.1f", 100*float64(min(s.done, s.total))/float64(s.total))
}

// eta is the time left at the rate so far (0 when unknown or done).
func (s side) eta(elapsed time.Duration) time.Duration {
	if s.finished || s.done <= 0 || s.total <= s.done || elapsed <= 0 {
		return 0
	}
	rate := float64(s.done) / elapsed.Seconds()
	return time.Duration(float64(s.total-s.done) / rate * float64(time.Second)).Round(time.Second)
}

// readSide is the snapshot's or the table scan's progress (ok false when
// neither runs here).
func (r *Reporter) readSide() (side, bool) {
	switch {
	case r.hasSnapshot():
		p := r.snapshotProgress()
		return side{done: p.Scanned, total: p.Total, finished: p.Done}, true
	case r.s.Table != nil:
		if p, ok := r.s.Table.ScanProgress(); ok {
			return side{done: p.Items, total: p.Total, finished: p.Done}, true
		}
	}
	return side{}, false
}

// appliedSide is the sink's progress through what the read publishes,
// while a snapshot or scan is being copied here (ok false otherwise: live
// changes have no end to reach). Its total is what was published plus
// what the read has still to read, one event per key, so the run's ETA
// comes from here: a read that is done is not a copy that is done.
func (r *Reporter) appliedSide() (side, bool) {
	read, ok := r.readSide()
	if !ok || r.s.Worker == nil || r.s.Publisher == nil {
		return side{}, false
	}
	ws := r.s.Worker.Stats()
	s := side{done: ws.Applied + ws.SkippedOlder + ws.DeadLettered, total: r.s.Publisher.Stats().Published}
	if !read.finished && read.total > read.done {
		s.total += read.total - read.done
	}
	if read.finished && s.done >= s.total {
		return side{}, false // caught up: live from here on
	}
	s.total = max(s.total, s.done)
	return s, true
}

// sideAttrs are a progress line's attributes for one side: done, rate,
// percent and ETA.
func sideAttrs(prefix string, s side, elapsed time.Duration) []any {
	attrs := []any{prefix + "_per_s", int(float64(s.done) / max(elapsed.Seconds(), 1e-3))}
	if pct := s.pct(); pct != "" && !s.finished {
		attrs = append(attrs, prefix+"_pct", pct)
	}
	if eta := s.eta(elapsed); eta > 0 {
		attrs = append(attrs, prefix+"_eta", eta)
	}
	return attrs
}
