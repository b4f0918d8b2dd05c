package main

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/pipeline"
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
	redissrc "github.com/cutover/cutover/sources/redis"
)

// reporter logs progress while a pipeline runs and prints its summary.
type reporter struct {
	w     *wiring
	redis *redissrc.Source // the Redis source, when it runs here
	table *ddbsrc.Source   // the DynamoDB source, when it runs here
	start time.Time
	end   atomic.Pointer[map[int32]int64] // end offsets to measure sink lag against
	// barActive is set while a progress bar owns the terminal.
	barActive atomic.Bool
}

func newReporter(w *wiring, start time.Time) *reporter {
	return &reporter{w: w, start: start}
}

// redisStats are the Redis source's counters; zero when none runs here.
func (r *reporter) redisStats() redissrc.SourceStats {
	if r.redis == nil {
		return redissrc.SourceStats{}
	}
	return r.redis.Stats()
}

// snapshotProgress sums every node's snapshot.
func (r *reporter) snapshotProgress() redissrc.SnapshotProgress { return r.redisStats().Snapshot }

func (r *reporter) hasSnapshot() bool { return r.redisStats().HasSnapshot }

func (r *reporter) hasLive() bool { return r.redisStats().HasLive }

// liveStats sums every node's live capture.
func (r *reporter) liveStats() redissrc.LiveStats { return r.redisStats().Live }

func (r *reporter) setEnd(end map[int32]int64) { r.end.Store(&end) }

// log writes one progress line (not while a progress bar is drawn).
func (r *reporter) log() {
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
	if r.table != nil {
		attrs = append(attrs, r.tableProgress()...)
	}
	if r.w.pub != nil {
		attrs = append(attrs, "published", r.w.pub.Stats().Published)
	}
	if r.w.worker != nil {
		ws := r.w.worker.Stats()
		c := r.w.sink.counters()
		attrs = append(attrs, "writes", c.writes, "applied", ws.Applied, "skipped_older", ws.SkippedOlder,
			"dead_lettered", r.deadLettered(), "throttles", c.throttles, "in_flight_limit", ws.Concurrency)
		if c.pace > 0 {
			attrs = append(attrs, "writes_per_s_limit", int(c.pace))
		}
		if ws.Paused {
			attrs = append(attrs, "fetch_paused", true)
		}
		if e := r.end.Load(); e != nil {
			attrs = append(attrs, "sink_lag", r.w.worker.Progress().Lag(*e, r.w.base))
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
	r.w.log.Info("progress", attrs...)
}

func (r *reporter) deadLettered() int64 {
	var n int64
	if r.w.pub != nil {
		n += r.w.pub.Stats().DeadLettered
	}
	if r.w.worker != nil {
		n += r.w.worker.Stats().DeadLettered
	}
	return n
}

// summary prints what the run did and returns exitDeadLettered if any key
// was not copied.
func (r *reporter) summary(w io.Writer, what string, elapsed time.Duration) error {
	cfg := r.w.cfg
	row := func(label string, n int64, note string) {
		fmt.Fprintf(w, "  %-18s %12s  %s\n", label, group(n), note)
	}
	fmt.Fprintf(w, "\n%s of pipeline %q done in %s\n", what, cfg.Name, elapsed.Round(time.Millisecond))
	target := "(sink not run here)"
	if r.w.sink != nil {
		target = r.w.sink.describe()
	}
	fmt.Fprintf(w, "  %s → kafka topic %s → %s\n", cfg.DescribeSource(), cfg.Kafka.Topic, target)
	var read int64
	if r.table != nil {
		read += r.tableSummary(row)
	}
	if r.hasSnapshot() {
		p := r.snapshotProgress()
		resumed := ""
		if p.Resumed {
			resumed = "(resumed an interrupted snapshot; count includes the earlier run)"
		}
		row("keys scanned", p.Scanned, fmt.Sprintf("DBSIZE at start %s %s", group(p.Total), resumed))
		row("keys read", p.Events, "")
		row("filtered", p.Filtered, "by pattern or type")
		row("vanished", p.Vanished, "deleted between SCAN and read")
		if p.BigKeys > 0 {
			row("big keys", p.BigKeys, "read and sent in pieces")
		}
		if p.Elsewhere > 0 {
			row("not read", p.Elsewhere, "in cluster slots moving to another master: healed once the move ends")
		}
		read += p.Events
	}
	if r.hasLive() {
		l := r.liveStats()
		row("notifications", l.Notifications, "keyspace events received")
		row("live events", l.Events, fmt.Sprintf("%s of them deletes", group(l.Deletes)))
		row("gaps healed", l.Heals, fmt.Sprintf("%s gaps detected, %s keys re-read", group(l.Gaps), group(l.HealedKeys)))
		if l.Incomplete > 0 {
			row("heals incomplete", l.Incomplete, "could not read every key, so swept nothing (see the log)")
		}
		if st := r.redisStats(); st.Topology > 0 {
			row("masters changed", st.Topology, fmt.Sprintf("failovers or reshardings followed, each in a new version epoch; reading %s now", strings.Join(st.Masters, ", ")))
		}
		read += l.Events
	}
	if r.w.pub != nil {
		ps := r.w.pub.Stats()
		row("events published", ps.Published, fmt.Sprintf("%.1f MB; %s", float64(ps.Bytes)/1e6, opSplit(ps.PublishedByOp)))
	}
	if r.w.worker != nil {
		ws := r.w.worker.Stats()
		c := r.w.sink.counters()
		row("events applied", ws.Applied, fmt.Sprintf("%s; %s writes, %s throttled and retried, %s swept by truncates",
			opSplit(ws.AppliedByOp), group(c.writes), group(c.throttles), group(c.swept)))
		row("skipped as older", ws.SkippedOlder, fmt.Sprintf("%s; the target already held this version or a newer one", opSplit(ws.SkippedByOp)))
		if ws.FetchPauses > 0 {
			row("fetch pauses", ws.FetchPauses, "fetching stopped while the target throttled")
		}
	}
	dead := r.deadLettered()
	row("dead-lettered", dead, "topic "+cfg.Kafka.DeadLetterTopic)
	fmt.Fprintf(w, "  %-18s %12s  keys/s\n", "rate", group(int64(float64(read)/elapsed.Seconds())))
	if dead > 0 {
		fmt.Fprintf(w, "\n%d events were not copied (a key read in pieces counts once per piece); each is logged above with its reason and is in topic %s.\n",
			dead, cfg.Kafka.DeadLetterTopic)
		return &exitError{code: exitDeadLettered}
	}
	return nil
}

// opSplit says how many of a count were upserts, deletes and truncates.
func opSplit(c pipeline.OpCounts) string {
	return fmt.Sprintf("%s upserts, %s deletes, %s truncates", group(c.Upserts), group(c.Deletes), group(c.Truncates))
}

// tableProgress is the DynamoDB source's part of a progress line.
func (r *reporter) tableProgress() []any {
	var attrs []any
	if p, ok := r.table.ScanProgress(); ok {
		attrs = append(attrs, "scanned_items", p.Items, "of_about", p.Total, "read_capacity", int64(p.ReadCapacity))
		attrs = append(attrs, sideAttrs("read", side{done: p.Items, total: p.Total, finished: p.Done}, time.Since(r.start))...)
	}
	if s, ok := r.table.StreamStats(); ok {
		attrs = append(attrs, "stream_records", s.Records, "shards", s.Shards, "stream_age", s.Age.Round(time.Millisecond), "heals", r.table.Heals())
	}
	return attrs
}

// tableSummary writes the DynamoDB source's rows and returns the items
// and records it read.
func (r *reporter) tableSummary(row func(string, int64, string)) int64 {
	var read int64
	if p, ok := r.table.ScanProgress(); ok {
		resumed := ""
		if p.Resumed {
			resumed = "(resumed an interrupted scan; count includes the earlier run)"
		}
		row("items scanned", p.Items, fmt.Sprintf("about %s in the table; %s read capacity units %s", group(p.Total), group(int64(p.ReadCapacity)), resumed))
		read += p.Items
	}
	if s, ok := r.table.StreamStats(); ok {
		row("stream records", s.Records, fmt.Sprintf("%s of them deletes, from %s shards", group(s.Deletes), group(s.Shards)))
		if s.Rereads > 0 {
			row("items re-read", s.Rereads, "their record had no usable new image")
		}
		if s.Skipped > 0 {
			row("records skipped", s.Skipped, "older than the position saved by an earlier run (read again from the shard's start)")
		}
		row("gaps healed", r.table.Heals(), fmt.Sprintf("%s trimmed gaps detected", group(s.Gaps)))
		read += s.Records
	}
	return read
}

// group formats n with thousands separators.
func group(n int64) string {
	if n < 0 {
		return "-" + group(-n)
	}
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func filterOf(r config.RedisSourceConfig) pipeline.KeyFilter {
	return pipeline.KeyFilter{Include: r.Include, Exclude: r.Exclude}
}
