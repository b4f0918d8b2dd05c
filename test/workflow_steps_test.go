// The operator steps TestWorkflows draws (workflow_test.go).

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/test/chaos"
	"github.com/cutover/cutover/test/stack"
)

// backfill runs a backfill to completion. With the writers paused for
// it, the target must then hold every source key as the source does
// (a backfill deletes nothing, so keys only in the target are allowed).
func (w *workflow) backfill(ctx context.Context) {
	quiet := w.rng.IntN(2) == 0
	if quiet {
		w.quiesce(ctx)
		defer w.resumeIf(true)
	}
	w.ran = true
	res := w.runCmd(5*time.Minute, "backfill")
	if res.Code != 0 {
		w.violation("backfill exited %d, want 0:\n%s\n%s", res.Code, res.Stdout, stack.Tail(res.Stderr, 3000))
		return
	}
	w.logs = append(w.logs, "backfill:\n"+stack.Tail(res.Stderr, 2000)+"\n"+res.Stdout)
	if !quiet {
		w.note("writers running: no check")
		return
	}
	src, dst, err := w.states(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	d := chaos.CompareStates(src, dst, time.Now(), ttlTolerance)
	extra := d.Resurrected
	d.Resurrected = 0
	w.note("writers paused: %d keys in the target the source no longer has (a backfill deletes nothing)", extra)
	if !d.OK() {
		w.violation("after a backfill with no writes, the target does not hold the source's keys:\n%s", d)
	}
}

// backfillInterrupted stops a backfill mid-snapshot (once a position is
// saved) with SIGTERM or SIGKILL.
func (w *workflow) backfillInterrupted(ctx context.Context) {
	kill := w.rng.IntN(2) == 0
	w.ran = true
	p := w.start("backfill")
	if !w.waitSnapshotSaved(p, time.Now().Add(-time.Second)) {
		w.note("the snapshot finished before a position was saved")
	}
	if kill {
		p.Kill()
		w.note("SIGKILL")
		return
	}
	// A SIGTERM before the process installed its handler kills it by
	// default (exit -1): when the snapshot gave no position to wait for
	// (one finished in the last second counts as done), wait for its
	// first log line, written after the handler is in place.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !p.Exited(); {
		if _, errOut := p.Output(); errOut != "" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	code := p.Stop()
	_, errOut := p.Output()
	switch {
	case code == 0:
		w.note("SIGTERM: it had finished")
	case code == 1 && strings.Contains(errOut, "interrupted"):
		w.note("SIGTERM: interrupted, exit 1")
	default:
		w.violation("an interrupted backfill exited %d:\n%s", code, w.tail(p))
	}
}

// waitSnapshotSaved waits until the snapshot (or table scan) of the
// process started at since saved an unfinished position (true), or
// finished, or the process exited, or 10 s passed (false).
func (w *workflow) waitSnapshotSaved(p *stack.Proc, since time.Time) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !p.Exited() {
		saved, done := w.snapshotPosition(since)
		if saved {
			return true
		}
		if done {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// snapshotPosition reads the snapshot's (Redis) or the table scan's
// (DynamoDB) checkpoint: saved is true for an unfinished position, done
// for a finished one written after since.
func (w *workflow) snapshotPosition(since time.Time) (saved, done bool) {
	_ = filepath.WalkDir(w.p.ckDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		var pos struct {
			Cursor   uint64            `json:"cursor"`
			Done     bool              `json:"done"`
			Last     []json.RawMessage `json:"last"`
			Finished bool              `json:"finished"`
		}
		raw, err := os.ReadFile(path)
		info, ierr := d.Info()
		if err != nil || ierr != nil || json.Unmarshal(raw, &pos) != nil {
			return nil
		}
		switch {
		case strings.HasSuffix(path, "snapshot.ckpt"):
			saved = saved || pos.Cursor != 0 && !pos.Done
			done = done || pos.Done && info.ModTime().After(since)
		case strings.HasSuffix(path, "/scan.ckpt"):
			for _, l := range pos.Last {
				saved = saved || !pos.Finished && len(l) > 0 && string(l) != "null"
			}
			done = done || pos.Finished && info.ModTime().After(since)
		}
		return nil
	})
	return saved, done
}

// replicate starts the source: one process with its sink worker, or
// --no-sink and one or two sink workers; sometimes with --restart.
func (w *workflow) replicate(ctx context.Context) {
	args := []string{"replicate"}
	w.withSink = w.rng.IntN(2) == 0
	if !w.withSink {
		args = append(args, "--no-sink")
	}
	if w.rng.IntN(4) == 0 {
		args = append(args, "--restart")
	}
	w.note("%s", strings.Join(args, " "))
	w.sourceStart = time.Now().Add(-time.Second) // checkpoint times have a coarse clock
	w.ran = true
	w.source = w.start(args...)
	if !w.withSink {
		for range 1 + w.rng.IntN(2) {
			if len(w.sinks) < 3 {
				w.addSink(ctx)
			}
		}
	}
}

// stopSource stops replicate by SIGTERM or SIGKILL, sometimes right after
// its snapshot saved a position (mid-snapshot).
func (w *workflow) stopSource(ctx context.Context) {
	if w.rng.IntN(3) == 0 {
		if w.waitSnapshotSaved(w.source, w.sourceStart) {
			w.note("mid-snapshot")
		} else {
			w.note("no unfinished snapshot position to wait for")
		}
	}
	w.stop("replicate", w.source, w.rng.IntN(2) == 0)
	w.source, w.withSink = nil, false
}

func (w *workflow) addSink(ctx context.Context) {
	// A restarted worker sometimes comes back under an id used before, as
	// a StatefulSet pod does.
	id := fmt.Sprint("w", w.workerN)
	if w.workerN > 0 && w.rng.IntN(2) == 0 {
		id = fmt.Sprint("w", w.rng.IntN(w.workerN))
		for _, s := range w.sinks {
			if s.id == id {
				id = fmt.Sprint("w", w.workerN)
			}
		}
	}
	if id == fmt.Sprint("w", w.workerN) {
		w.workerN++
	}
	w.sinks = append(w.sinks, &worker{id: id, proc: w.start("sink", "--worker-id", id)})
	w.note("sink --worker-id %s", id)
}

func (w *workflow) stopSink(ctx context.Context) {
	i := w.rng.IntN(len(w.sinks))
	s := w.sinks[i]
	w.sinks = append(w.sinks[:i], w.sinks[i+1:]...)
	w.stop("sink worker "+s.id, s.proc, w.rng.IntN(2) == 0)
}

var (
	replayRow   = regexp.MustCompile(`(?m)^\s+(\d+)\s+([0-9,]+|-)\s+([0-9,]+)\s+([0-9,]+)\s+([0-9,]+)$`)
	sweptRe     = regexp.MustCompile(`([0-9,]+) swept by truncates`)
	numberOfRow = func(s string) int64 {
		n, _ := strconv.ParseInt(strings.ReplaceAll(s, ",", ""), 10, 64)
		return n
	}
)

// replay replays the whole topic with no worker running. The group's lag
// before it (end − committed offsets, from replay's own table) is what no
// worker committed; everything else was applied or skipped before, so
// replaying it must apply nothing: with lag 0 the replay applies 0 events
// and sweeps nothing; otherwise it applies at most the lag.
func (w *workflow) replay(ctx context.Context) {
	res := w.runCmd(5*time.Minute, "replay", "--to-beginning")
	if res.Code != 0 {
		w.violation("replay exited %d, want 0:\n%s\n%s", res.Code, res.Stdout, stack.Tail(res.Stderr, 3000))
		return
	}
	var lag, total int64
	for _, m := range replayRow.FindAllStringSubmatch(res.Stdout, -1) {
		end := numberOfRow(m[4])
		total += numberOfRow(m[5])
		if m[2] == "-" {
			lag += end - numberOfRow(m[3]) // never committed: everything from the start
		} else {
			lag += end - numberOfRow(m[2])
		}
	}
	applied := summaryCount(w.t, res.Stdout, "events applied")
	skipped := summaryCount(w.t, res.Stdout, "skipped as older")
	var swept int64
	if m := sweptRe.FindStringSubmatch(res.Stdout); m != nil {
		swept = numberOfRow(m[1])
	}
	w.note("%d events replayed: %d applied, %d skipped as older, %d swept; lag before it %d", total, applied, skipped, swept, lag)
	switch {
	case lag == 0 && (applied != 0 || swept != 0):
		w.violation("a replay of a topic the group had fully committed applied %d events and swept %d keys, want 0 and 0 (all %d skipped as older):\n%s",
			applied, swept, total, res.Stdout)
	case applied > lag:
		w.violation("a replay applied %d events, more than the %d the group had not committed:\n%s", applied, lag, res.Stdout)
	}
}

// repair runs reconcile --repair (sometimes --delete-extra) while the
// writers run. Differences may remain (the writers change keys meanwhile:
// exit 4), but it must not fail.
func (w *workflow) repair(ctx context.Context) {
	args := []string{"reconcile", "--repair", "--output", "json", "--recheck-delay", "500ms"}
	if w.rng.IntN(2) == 0 {
		args = append(args, "--delete-extra")
	}
	res := w.runCmd(5*time.Minute, args...)
	var rep reconcileReport
	if res.Code != 0 && res.Code != 4 || json.Unmarshal([]byte(res.Stdout), &rep) != nil {
		w.violation("reconcile --repair exited %d:\n%s\n%s", res.Code, res.Stdout, stack.Tail(res.Stderr, 3000))
		return
	}
	w.note("exit %d: %d compared, %d repaired, %d still different", res.Code, rep.Compared, rep.Repaired, rep.Remaining)
}

func (w *workflow) toggleWriters(ctx context.Context) {
	if w.writing {
		w.quiesce(ctx)
		w.note("paused")
	} else {
		w.resumeIf(true)
		w.note("resumed")
	}
}

// pause lets time pass: the writers write (if they run), the pipeline
// works; the next step hits it at another moment.
func (w *workflow) pause(ctx context.Context) {
	d := time.Duration(500+w.rng.IntN(2500)) * time.Millisecond
	w.note("%v", d)
	time.Sleep(d)
}

func (w *workflow) quiesce(ctx context.Context) {
	var err error
	if w.writer != nil {
		err = w.writer.Quiesce(ctx)
	} else {
		err = w.items.Quiesce(ctx)
	}
	if err != nil {
		w.t.Fatal(err)
	}
	w.writing = false
}

func (w *workflow) resumeIf(yes bool) {
	if !yes {
		return
	}
	if w.writer != nil {
		w.writer.Resume()
	} else {
		w.items.Resume()
	}
	w.writing = true
}
