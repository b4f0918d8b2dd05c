package report

import "time"

// Log writes one progress line (not while a progress bar is drawn).
func (r *Reporter) Log() {
	if r.barActive.Load() {
		return
	}
	var attrs []any
	elapsed := time.Since(r.start)
	if r.hasSnapshot() {
		p := r.snapshotProgress()
		attrs = append(attrs, "scanned", p.Scanned, "of", p.Total)
		if read, ok := r.readSide(); ok {
			attrs = append(attrs, sideAttrs("read", read, elapsed)...)
		}
	}
	if r.hasLive() {
		l := r.liveStats()
		attrs = append(attrs, "notifications", l.Notifications, "live_events", l.Events, "dirty", l.Dirty, "gaps", l.Gaps, "heals", l.Heals)
		if l.Healing {
			attrs = append(attrs, "healing", true)
		}
		if l.Incomplete > 0 {
			attrs = append(attrs, "incomplete_heals", l.Incomplete)
		}
	}
	if r.s.Table != nil {
		attrs = append(attrs, r.tableProgress()...)
	}
	if r.s.Publisher != nil {
		attrs = append(attrs, "published", r.s.Publisher.Stats().Published)
	}
	if r.s.Worker != nil {
		ws := r.s.Worker.Stats()
		c := r.s.Sink.Counters()
		attrs = append(attrs, "writes", c.Writes, "applied", ws.Applied, "skipped_older", ws.SkippedOlder,
			"dead_lettered", r.deadLettered(), "throttles", c.Throttles, "in_flight_limit", ws.Concurrency)
		if c.Pace > 0 {
			attrs = append(attrs, "writes_per_s_limit", int(c.Pace))
		}
		if ws.Paused {
			attrs = append(attrs, "fetch_paused", true)
		}
		if e := r.end.Load(); e != nil {
			attrs = append(attrs, "sink_lag", r.s.Worker.Progress().Lag(*e, r.s.Base))
		}
		if s, ok := r.appliedSide(); ok {
			// The run's ETA: the copy ends when the sink has applied
			// what the read publishes, not when the read ends.
			attrs = append(attrs, sideAttrs("applied", s, elapsed)...)
			if eta := s.eta(elapsed); eta > 0 {
				attrs = append(attrs, "eta", eta)
			}
		}
	}
	r.log.Info("progress", attrs...)
}

// tableProgress is the DynamoDB source's part of a progress line.
func (r *Reporter) tableProgress() []any {
	var attrs []any
	if p, ok := r.s.Table.ScanProgress(); ok {
		attrs = append(attrs, "scanned_items", p.Items, "of_about", p.Total, "read_capacity", int64(p.ReadCapacity))
		attrs = append(attrs, sideAttrs("read", side{done: p.Items, total: p.Total, finished: p.Done}, time.Since(r.start))...)
	}
	if s, ok := r.s.Table.StreamStats(); ok {
		attrs = append(attrs, "stream_records", s.Records, "shards", s.Shards, "stream_age", s.Age.Round(time.Millisecond), "heals", r.s.Table.Heals())
	}
	return attrs
}
