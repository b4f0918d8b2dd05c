package report

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/cutover/cutover/pipeline/reconcile"
)

// Bar shows a long comparison's progress: a bar with rate and ETA on a
// terminal, a log line every interval otherwise.
type Bar struct {
	bar      *progressbar.ProgressBar
	log      *slog.Logger
	interval time.Duration
	start    time.Time
	last     time.Time
	total    int64 // about how many keys (0: unknown)
}

// NewBar returns the progress display of reconcile for about total keys
// (0: unknown); the bar only when stderr is a terminal and the report
// goes there as text.
func NewBar(log *slog.Logger, interval time.Duration, total int64, text bool) *Bar {
	p := &Bar{log: log, interval: interval, start: time.Now(), last: time.Now(), total: total}
	if text && term.IsTerminal(int(os.Stderr.Fd())) {
		if total <= 0 {
			total = -1 // unknown: a spinner
		}
		p.bar = newBar("reconcile", total)
	}
	return p
}

// newBar is a bar on stderr counting keys, with rate and ETA (-1: a
// spinner for an unknown total).
func newBar(what string, total int64) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("keys"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// Update shows how far the comparison rep is.
func (p *Bar) Update(rep reconcile.Report) {
	if p.bar != nil {
		_ = p.bar.Set64(rep.Compared)
		return
	}
	if p.interval > 0 && time.Since(p.last) >= p.interval {
		p.last = time.Now()
		attrs := []any{"compared", rep.Compared, "equal", rep.Equal, "differences", rep.Differences(),
			"cleared_on_recheck", rep.Cleared, "repaired", rep.Repaired}
		attrs = append(attrs, sideAttrs("keys", side{done: rep.Compared, total: p.total}, time.Since(p.start))...)
		p.log.Info("reconcile progress", attrs...)
	}
}

// Finish clears the bar.
func (p *Bar) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// SnapshotBar draws a copy's progress on stderr while a snapshot or scan
// runs, when stderr is a terminal and logs are text; the reporter's
// progress lines pause meanwhile. With a sink in this process the bar
// counts events applied (the copy's end, and its ETA), and says how far
// the read is; without one, it counts keys or items read. It returns once
// the copy is applied (or read) or ctx ends.
func (r *Reporter) SnapshotBar(ctx context.Context) {
	if r.cfg.Log.Format == "json" || !term.IsTerminal(int(os.Stderr.Fd())) {
		return
	}
	read, ok := r.readSide()
	if !ok || read.finished {
		return
	}
	applying := r.s.Worker != nil && r.s.Publisher != nil
	what := "read"
	if applying {
		what = "applied"
	}
	bar := newBar(what, max(read.total, 1))
	r.barActive.Store(true)
	defer func() {
		_ = bar.Finish()
		r.barActive.Store(false)
	}()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		read, _ = r.readSide()
		cur := read
		if applying {
			var ok bool
			if cur, ok = r.appliedSide(); !ok {
				return // applied everything the read published
			}
			if read.finished {
				bar.Describe("applied (read done)")
			} else if pct := read.pct(); pct != "" {
				bar.Describe(fmt.Sprintf("applied (read %s%%)", pct))
			}
		}
		if cur.total > bar.GetMax64() {
			bar.ChangeMax64(cur.total)
		}
		_ = bar.Set64(cur.done)
		if !applying && read.finished {
			return
		}
	}
}
