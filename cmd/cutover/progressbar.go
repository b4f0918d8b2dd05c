package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/cutover/cutover/pipeline/reconcile"
)

// progress shows a long comparison's progress: a bar with rate and ETA on
// a terminal, a log line every interval otherwise.
type progress struct {
	bar      *progressbar.ProgressBar
	log      *slog.Logger
	interval time.Duration
	last     time.Time
}

// newProgressBar returns the progress display for about total keys; the
// bar only when stderr is a terminal and the report goes there as text.
func newProgressBar(log *slog.Logger, interval time.Duration, total int64, text bool) *progress {
	p := &progress{log: log, interval: interval, last: time.Now()}
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

func (p *progress) update(rep reconcile.Report) {
	if p.bar != nil {
		_ = p.bar.Set64(rep.Compared)
		return
	}
	if p.interval > 0 && time.Since(p.last) >= p.interval {
		p.last = time.Now()
		p.log.Info("reconcile progress", "compared", rep.Compared, "equal", rep.Equal, "differences", rep.Differences(),
			"cleared_on_recheck", rep.Cleared, "repaired", rep.Repaired)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// snapshotBar draws a snapshot's progress (keys or items scanned of the
// store's count, rate, ETA) on stderr while it runs, when stderr is a
// terminal and logs are text; the reporter's progress lines pause
// meanwhile. It returns once the snapshot is done or ctx ends.
func (r *reporter) snapshotBar(ctx context.Context) {
	if r.w.cfg.Log.Format == "json" || !term.IsTerminal(int(os.Stderr.Fd())) {
		return
	}
	progress := func() (done, total int64, finished, ok bool) {
		switch {
		case r.hasSnapshot():
			p := r.snapshotProgress()
			return p.Scanned, p.Total, p.Done, true
		case r.table != nil:
			if p, ok := r.table.ScanProgress(); ok {
				return p.Items, p.Total, p.Done, true
			}
		}
		return 0, 0, false, false
	}
	_, total, finished, ok := progress()
	if !ok || finished {
		return
	}
	bar := newBar("snapshot", max(total, 1))
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
		done, total, finished, _ := progress()
		if total > bar.GetMax64() {
			bar.ChangeMax64(total)
		}
		_ = bar.Set64(done)
		if finished {
			return
		}
	}
}
