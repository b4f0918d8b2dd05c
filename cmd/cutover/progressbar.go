package main

import (
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
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("reconcile"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("keys"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
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
