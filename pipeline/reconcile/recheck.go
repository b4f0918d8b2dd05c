package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover/cutover/pipeline"
)

// state is one key read again on both sides.
type state struct {
	event  pipeline.Event // the source's state: upsert or delete
	reject error          // or why the source cannot express it
	found  Found          // the target's state, read before the source's
	ok     bool           // the target can address the key
}

// reread reads keys again on both sides: the target first (its values,
// then its versions), the source after.
//
// The order is what makes a repair safe. Everything the target holds when
// it is read was applied from a source read made earlier still, so the
// source's state read afterwards is at least as new as any state the
// target held, and a repair that carries it replaces nothing newer than
// itself (repairVersion). A change made after the target was read is
// either in the source's state read here (made before that read) or comes
// with a version newer than the repair's (made after it), and wins.
//
// Read the other way round, a change that reached the target between the
// two reads was missing from the source's state but present in the
// target's version: the repair, stamped newer than that version, put the
// older state back over the newer one — a deleted key came back as
// "missing", a key re-created after the source said it was gone was
// deleted as "extra".
func (u *run) reread(ctx context.Context, keys [][]byte) (map[string]*state, error) {
	found, err := u.tgt.Lookup(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read target again: %w", err)
	}
	var versions map[string]pipeline.Version
	if v, ok := u.tgt.(Versioner); ok {
		if versions, err = v.KeyVersions(ctx, keys); err != nil {
			return nil, fmt.Errorf("read target versions: %w", err)
		}
	}
	b, err := u.src.(Reader).Read(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read source again: %w", err)
	}
	out := make(map[string]*state, len(keys))
	for _, k := range keys {
		f, ok := found[string(k)]
		if versions != nil {
			f.Version = versions[string(k)]
		}
		out[string(k)] = &state{event: pipeline.Event{Key: k, Op: pipeline.OpDelete}, found: f, ok: ok}
	}
	for _, e := range b.Events {
		if st := out[string(e.Key)]; st != nil {
			st.event = e
		}
	}
	for _, rej := range b.Rejects {
		if st := out[string(rej.Key)]; st != nil {
			st.reject = rej.Err
		}
	}
	return out, nil
}

// settle re-checks the pending keys: each is read again on both sides
// once RecheckDelay has passed since it was seen, up to Rechecks times;
// what still differs counts (and is repaired, from the last re-read).
func (u *run) settle(ctx context.Context) error {
	if len(u.pending) == 0 {
		return nil
	}
	keys := make([][]byte, len(u.pending))
	for i, p := range u.pending {
		keys[i] = p.key
	}
	wait := time.Until(u.pending[len(u.pending)-1].seen.Add(u.opts.RecheckDelay))
	u.pending = u.pending[:0]
	var states map[string]*state
	for round := 0; round < u.opts.Rechecks && len(keys) > 0; round++ {
		if round > 0 {
			wait = u.opts.RecheckDelay
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		var err error
		if states, err = u.reread(ctx, keys); err != nil {
			return err
		}
		still := keys[:0]
		for _, k := range keys {
			st := states[string(k)]
			if st.reject == nil {
				if kind, _ := u.classify(&st.event, st.found, st.ok); kind == "" {
					u.r.Cleared++
					u.r.Equal++
					continue
				}
			}
			still = append(still, k)
		}
		keys = still
	}
	var repairs []pipeline.Event
	for _, k := range keys {
		st := states[string(k)]
		if st.reject != nil {
			u.note(NotComparable, k, st.reject.Error())
			continue
		}
		kind, detail := u.classify(&st.event, st.found, st.ok)
		u.note(kind, k, detail)
		if e, ok := u.repairEvent(kind, st); ok {
			repairs = append(repairs, e)
		}
	}
	u.progress()
	return u.repair(ctx, repairs)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
