// What TestWorkflows checks at a checkpoint and at the end (workflow_test.go).

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cutover/cutover/test/chaos"
	"github.com/cutover/cutover/test/stack"
)

func (w *workflow) states(ctx context.Context) (src, dst map[string]chaos.KeyState, err error) {
	if w.kind == "redis" {
		src, err = chaos.ReadRedis(ctx, w.src.Client, "")
	} else {
		src, err = chaos.TableState(ctx, w.db, w.table, "item:")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read the source: %w", err)
	}
	if dst, err = chaos.ReadRedis(ctx, w.dst.Client, versionPrefix); err != nil {
		return nil, nil, fmt.Errorf("read the target: %w", err)
	}
	return src, dst, nil
}

// checkpoint pauses the writers while a live pipeline runs, waits until
// the target equals the source key by key, and has reconcile agree (exit
// 0); then lets the writers go on.
func (w *workflow) checkpoint(ctx context.Context) bool {
	was := w.writing
	w.quiesce(ctx)
	defer w.resumeIf(was)
	start := time.Now()
	deadline := start.Add(3 * time.Minute)
	var d chaos.Diff
	for {
		src, dst, err := w.states(ctx)
		if err != nil {
			w.t.Fatal(err)
		}
		d = chaos.CompareStates(src, dst, time.Now(), ttlTolerance)
		if d.OK() || time.Now().After(deadline) {
			break
		}
		w.checkProcs()
		if w.broken {
			return false
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !d.OK() {
		w.violation("the target did not converge to the source within 3 minutes of the writers pausing:\n%s", d)
		return false
	}
	if err := w.mon.Sync(ctx); err != nil {
		w.violation("the regression monitor failed: %v", err)
		return false
	}
	w.note("converged in %v: %s", time.Since(start).Round(100*time.Millisecond), strings.SplitN(d.String(), "\n", 2)[0])
	res := w.runCmd(5*time.Minute, "reconcile", "--output", "json", "--recheck-delay", "500ms")
	var rep reconcileReport
	if res.Code != 0 || json.Unmarshal([]byte(res.Stdout), &rep) != nil {
		w.violation("the stores are equal key by key, but reconcile exited %d, want 0:\n%s\n%s", res.Code, res.Stdout, stack.Tail(res.Stderr, 2000))
		return false
	}
	w.note("reconcile exit 0: %d keys compared", rep.Compared)
	return true
}

// final makes the pipeline live if it is not (a replicate, a worker),
// restores the source's clock, and checks once more.
func (w *workflow) final(ctx context.Context) {
	if w.clock != nil && w.clockOffset != 0 {
		w.setClock(ctx, 0)
	}
	if w.source == nil {
		w.replicate(ctx)
	} else if !w.withSink && len(w.sinks) == 0 {
		w.addSink(ctx)
	}
	w.checkpoint(ctx)
}
