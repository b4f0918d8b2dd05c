package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cutover/cutover/pipeline/plan"
)

// Summary prints what the run did, what ("backfill", "replicate", …),
// in elapsed, and returns how many events were dead-lettered (not
// copied).
func (r *Reporter) Summary(w io.Writer, what string, elapsed time.Duration) (deadLettered int64) {
	cfg := r.cfg
	row := func(label string, n int64, note string) {
		fmt.Fprintf(w, "  %-18s %12s  %s\n", label, plan.FormatCount(n), note)
	}
	fmt.Fprintf(w, "\n%s of pipeline %q done in %s\n", what, cfg.Name, elapsed.Round(time.Millisecond))
	target := "(sink not run here)"
	if r.s.Sink != nil {
		target = r.s.Sink.Describe()
	}
	fmt.Fprintf(w, "  %s → kafka topic %s → %s\n", cfg.DescribeSource(), cfg.Kafka.Topic, target)
	var read int64
	if r.s.Table != nil {
		read += r.tableSummary(row)
	}
	if r.hasSnapshot() {
		p := r.snapshotProgress()
		resumed := ""
		if p.Resumed {
			resumed = "(resumed an interrupted snapshot; count includes the earlier run)"
		}
		row("keys scanned", p.Scanned, fmt.Sprintf("DBSIZE at start %s %s", plan.FormatCount(p.Total), resumed))
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
		row("live events", l.Events, fmt.Sprintf("%s of them deletes", plan.FormatCount(l.Deletes)))
		row("gaps healed", l.Heals, fmt.Sprintf("%s gaps detected, %s keys re-read", plan.FormatCount(l.Gaps), plan.FormatCount(l.HealedKeys)))
		if l.Incomplete > 0 {
			row("heals incomplete", l.Incomplete, "could not read every key, so swept nothing (see the log)")
		}
		if st := r.redisStats(); st.Topology > 0 {
			row("masters changed", st.Topology, fmt.Sprintf("failovers or reshardings followed, each in a new version epoch; reading %s now", strings.Join(st.Masters, ", ")))
		}
		read += l.Events
	}
	if r.s.Publisher != nil {
		ps := r.s.Publisher.Stats()
		row("events published", ps.Published, fmt.Sprintf("%.1f MB; %s", float64(ps.Bytes)/1e6, opSplit(ps.PublishedByOp)))
	}
	if r.s.Worker != nil {
		ws := r.s.Worker.Stats()
		c := r.s.Sink.Counters()
		row("events applied", ws.Applied, fmt.Sprintf("%s; %s writes, %s throttled and retried, %s swept by truncates",
			opSplit(ws.AppliedByOp), plan.FormatCount(c.Writes), plan.FormatCount(c.Throttles), plan.FormatCount(c.Swept)))
		row("skipped as older", ws.SkippedOlder, fmt.Sprintf("%s; the target already held this version or a newer one", opSplit(ws.SkippedByOp)))
		if ws.FetchPauses > 0 {
			row("fetch pauses", ws.FetchPauses, "fetching stopped while the target throttled")
		}
	}
	dead := r.deadLettered()
	row("dead-lettered", dead, "topic "+cfg.Kafka.DeadLetterTopic)
	fmt.Fprintf(w, "  %-18s %12s  keys/s\n", "rate", plan.FormatCount(int64(float64(read)/elapsed.Seconds())))
	if dead > 0 {
		fmt.Fprintf(w, "\n%d events were not copied (a key read in pieces counts once per piece); each is logged above with its reason and is in topic %s.\n",
			dead, cfg.Kafka.DeadLetterTopic)
	}
	return dead
}

// tableSummary writes the DynamoDB source's rows and returns the items
// and records it read.
func (r *Reporter) tableSummary(row func(string, int64, string)) int64 {
	var read int64
	if p, ok := r.s.Table.ScanProgress(); ok {
		resumed := ""
		if p.Resumed {
			resumed = "(resumed an interrupted scan; count includes the earlier run)"
		}
		row("items scanned", p.Items, fmt.Sprintf("about %s in the table; %s read capacity units %s", plan.FormatCount(p.Total), plan.FormatCount(int64(p.ReadCapacity)), resumed))
		read += p.Items
	}
	if s, ok := r.s.Table.StreamStats(); ok {
		row("stream records", s.Records, fmt.Sprintf("%s of them deletes, from %s shards", plan.FormatCount(s.Deletes), plan.FormatCount(s.Shards)))
		if s.Rereads > 0 {
			row("items re-read", s.Rereads, "their record had no usable new image")
		}
		if s.Skipped > 0 {
			row("records skipped", s.Skipped, "older than the position saved by an earlier run (read again from the shard's start)")
		}
		row("gaps healed", r.s.Table.Heals(), fmt.Sprintf("%s trimmed gaps detected", plan.FormatCount(s.Gaps)))
		read += s.Records
	}
	return read
}
