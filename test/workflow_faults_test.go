// The faults TestWorkflows injects between steps (workflow_test.go).

package test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/cutover/cutover/test/chaos"
)

// denyReads takes away cutover's right to read the keys w:1* for a few
// seconds, sometimes just after killing its pub/sub connection so that a
// heal is reading when its reads start failing.
func (w *workflow) denyReads(ctx context.Context) {
	if w.source != nil && w.rng.IntN(2) == 0 {
		must(w.t, w.src.Client.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err())
		w.note("pub/sub killed first: a heal starts")
	}
	must(w.t, w.src.Client.Do(ctx, "ACL", "SETUSER", "cutover", "resetkeys", "~w:[^1]*").Err())
	d := time.Duration(2000+w.rng.IntN(2000)) * time.Millisecond
	w.note("keys w:1* unreadable for %v", d)
	time.Sleep(d)
	must(w.t, w.src.Client.Do(ctx, "ACL", "SETUSER", "cutover", "resetkeys", "~*").Err())
}

func (w *workflow) killClients(ctx context.Context) {
	n, err := w.src.Client.ClientKillByFilter(ctx, "USER", "cutover").Result()
	must(w.t, err)
	w.note("%d connections killed", n)
}

// pubsubDown kills every pub/sub connection of the source every 200ms
// for a few seconds.
func (w *workflow) pubsubDown(ctx context.Context) {
	d := time.Duration(2000+w.rng.IntN(3000)) * time.Millisecond
	w.note("for %v", d)
	end := time.Now().Add(d)
	kills := int64(0)
	for time.Now().Before(end) {
		n, err := w.src.Client.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
		must(w.t, err)
		kills += n
		time.Sleep(200 * time.Millisecond)
	}
	w.note("%d connections killed", kills)
}

// clockStep steps the source Redis's wall clock by 1–5 s, back or
// forward, holds it 1–3 s, and half the time steps it back to the real
// time (otherwise the offset stays until the next clock step).
func (w *workflow) clockStep(ctx context.Context) {
	off := 1 + w.rng.IntN(5)
	if w.rng.IntN(2) == 0 {
		off = -off
	}
	if off == w.clockOffset {
		off = -off
	}
	w.setClock(ctx, off)
	hold := time.Duration(1000+w.rng.IntN(2000)) * time.Millisecond
	time.Sleep(hold)
	if w.rng.IntN(2) == 0 {
		w.setClock(ctx, 0)
	}
}

func (w *workflow) setClock(ctx context.Context, off int) {
	if err := w.clock.Step(ctx, time.Duration(off)*time.Second); err != nil {
		w.t.Fatal(err)
	}
	w.note("source clock %+ds (verified with TIME)", off)
	w.clockOffset = off
}

func (w *workflow) flushdb(ctx context.Context) {
	must(w.t, w.src.Client.FlushDB(ctx).Err())
}

// streamOffOn turns the table's stream off and on again: a new stream,
// and a gap cutover must notice and heal.
func (w *workflow) streamOffOn(ctx context.Context) {
	if w.source != nil && !w.streamPositionSaved() {
		// A replicate that finds the stream off while its pipeline never
		// read the stream is refused with the command that enables it
		// (DESIGN §3: cutover cannot tell a stream toggled for a moment
		// from one the user forgot), and exits. That is the promised
		// answer, not a fault handled badly: a replicate still starting,
		// with no stream position saved yet, is let take one first.
		// Every run that has one (this one, or any later one) must ride
		// out the toggle as a gap, and is checked for it.
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && !w.source.Exited() && !w.streamPositionSaved(); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := chaos.SetStream(ctx, w.db, w.table, false); err != nil {
		w.t.Fatal(err)
	}
	time.Sleep(time.Duration(w.rng.IntN(2000)) * time.Millisecond)
	if err := chaos.SetStream(ctx, w.db, w.table, true); err != nil {
		w.t.Fatal(err)
	}
}

// streamPositionSaved reports whether the pipeline's DynamoDB source has
// saved a stream position (checkpoint "<pipeline>/dynamodb/<table>/stream"
// in the file store): from then on it has read the stream.
func (w *workflow) streamPositionSaved() bool {
	_, err := os.Stat(filepath.Join(w.p.ckDir, url.PathEscape(w.p.name), "dynamodb", url.PathEscape(w.table), "stream.ckpt"))
	return err == nil
}
