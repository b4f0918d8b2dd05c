package reconcile

import (
	"context"
	"fmt"

	"github.com/cutover/cutover/pipeline"
)

// repairEvent is the event that makes the target hold the source's state
// of a key: the state read in st (after the target's), stamped by
// repairVersion. ok is false when no repair goes out: none was asked
// for, no event can carry it (Report.RepairSkipped), or no version is
// safe for it now (Report.RepairDeferred).
func (u *run) repairEvent(kind Kind, st *state) (pipeline.Event, bool) {
	if u.opts.Repair == nil || kind == Unaddressable || (kind == Extra && !u.opts.DeleteExtra) {
		return pipeline.Event{}, false
	}
	e := st.event
	e.Origin = pipeline.OriginRepair
	v, ok := repairVersion(e.Version, st.found.Version, u.opts.ClockReads)
	if !ok {
		u.r.RepairDeferred++
		u.remaining(e.Key, fmt.Sprintf("%s: not repaired: the source's read (version %s) is not newer than the target's version %s of the same epoch "+
			"although it was made after the target was read, so the source's clock disagrees with the versions the target holds "+
			"(a slot served by another master, a clock stepped back) and a repair could outrank later changes; the next run checks it again",
			kind, e.Version, st.found.Version))
		return pipeline.Event{}, false
	}
	e.Version = v
	if err := e.Validate(); err != nil {
		u.r.RepairSkipped++
		u.remaining(e.Key, fmt.Sprintf("%s: cannot be repaired through the pipeline: %v (fix it in the target by hand)", kind, err))
		return pipeline.Event{}, false
	}
	return e, true
}

// repairVersion is the version of a repair carrying a state that the
// source read at version read after the target was seen holding version
// held. ok is false when no version is safe.
//
// With clockReads (Redis: a read carries the server's time) it is
// max(read, held.Next()): read when it is newer than held, else
// held.Next(), the smallest version newer than held. Otherwise (DynamoDB:
// every item read carries a snapshot row's version, sequence 1 of the
// epoch, whenever it was read) it is held.Next(): read says nothing about
// when the state was read, and stamping it would tie with the snapshot
// rows of its epoch — the sink keeps whichever of two equal versions
// lands first, so a row read later, with changes the stream does not
// carry, could be skipped.
//
// Why this never puts an older state over a newer one (docs/DESIGN.md §3,
// "Reconcile's repairs"), given that the target was read first:
//
//   - The repair beats held, so the sink applies it over the state the
//     lookup saw — applied from a source read made before the lookup, so
//     no newer than the state the repair carries.
//   - A change made after the source read carries a version newer than the
//     repair's. Newer than held.Next(): its read followed the read behind
//     held (applied before the lookup), so its version is newer than held
//     or of a later epoch, and no version a source makes lies between held
//     and held.Next() — a clock version is 16 bytes, a sequence version as
//     long as its length byte says, so neither is ever held with a zero
//     byte appended. Newer than read (clockReads): a later change is read
//     at a later time of the same clock, or in a later epoch.
//   - A change made between the lookup and the source read is in the state
//     the repair carries; its own event, and those of the changes after
//     it, still reach the sink in order, as they would without the repair.
//   - A stale lookup (held older than what the target holds) only makes the
//     version smaller (Next keeps the order of versions), so the sink's own
//     comparison makes the repair lose, never win, against what it missed.
//   - held of a later epoch than read (reconcile loaded the epoch before
//     the source moved on): later changes are read in held's epoch or
//     after, so held.Next() still loses to them.
//
// The one case the argument fails: with clockReads, a read made after the
// lookup that is not newer than held in held's own epoch. The clock that
// stamped it is behind the one that stamped held (a slot now served by
// another master, a clock stepped back, before the source moved to a new
// epoch), so changes made after it may be stamped below held.Next() too:
// the repair would outrank changes it never saw. Such a key is left for a
// later run.
func repairVersion(read, held pipeline.Version, clockReads bool) (pipeline.Version, bool) {
	if !clockReads {
		return held.Next(), true
	}
	if read.Newer(held) {
		return read, true
	}
	if len(read) >= 8 && len(held) >= 8 && read.Epoch() == held.Epoch() {
		return nil, false
	}
	return held.Next(), true
}

// remaining keeps an example of a key still different at the end.
func (u *run) remaining(key []byte, detail string) {
	if len(u.r.RemainingSamples) < u.opts.Samples {
		u.r.RemainingSamples = append(u.r.RemainingSamples, Sample{Key: DisplayKey(key), Detail: detail})
	}
}

func (u *run) repair(ctx context.Context, events []pipeline.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := u.opts.Repair.Repair(ctx, events); err != nil {
		return fmt.Errorf("publish repairs: %w", err)
	}
	u.r.Repaired += int64(len(events))
	for _, e := range events {
		if len(u.repaired) < u.opts.MaxRepairs {
			u.repaired = append(u.repaired, e.Key)
		} else {
			u.r.Unverified++
		}
	}
	return nil
}

// verifyRepairs waits for the repairs to be applied and reads every
// repaired key again on both sides, in reread's order (with re-checks:
// the source may still be changing).
func (u *run) verifyRepairs(ctx context.Context) error {
	if u.opts.Repair == nil || u.r.Repaired == 0 {
		return nil
	}
	if err := u.opts.Repair.Wait(ctx); err != nil {
		return fmt.Errorf("wait for the repairs to be applied: %w", err)
	}
	for start := 0; start < len(u.repaired); start += u.opts.Pending {
		keys := u.repaired[start:min(start+u.opts.Pending, len(u.repaired))]
		for round := 0; round < u.opts.Rechecks && len(keys) > 0; round++ {
			if round > 0 {
				if err := sleep(ctx, u.opts.RecheckDelay); err != nil {
					return err
				}
			}
			states, err := u.reread(ctx, keys)
			if err != nil {
				return err
			}
			var still [][]byte
			for _, k := range keys {
				st := states[string(k)]
				if kind, detail := u.classify(&st.event, st.found, st.ok); kind != "" && st.reject == nil {
					still = append(still, k)
					if round == u.opts.Rechecks-1 {
						u.r.Remaining++
						u.remaining(k, string(kind)+": "+detail)
					}
				}
			}
			keys = still
		}
	}
	return nil
}
