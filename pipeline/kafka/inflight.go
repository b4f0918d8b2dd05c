package kafka

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// inFlight tracks the records a worker has taken from Kafka and not yet
// finished, per partition in offset order, and bounds them by count and
// bytes. It answers the one question committing asks: up to which record
// of each partition is every record finished (applied, skipped as older,
// dead-lettered, or a barrier)? Offsets are committed only up to there,
// so a crash, a rebalance or a stop never commits past a record that is
// still being written; what lies beyond is applied again by the next
// owner, which versioned apply makes harmless.
type inFlight struct {
	maxCount int
	maxBytes int64

	mu    sync.Mutex
	parts map[int32]*partLog
	count int
	bytes int64
	// held and heldBytes are the finished records still kept in a
	// partition's log behind an unfinished one: they count against the
	// window too, or one record that never finishes lets the log grow
	// with everything fetched after it.
	held      int
	heldBytes int64
	ready     map[int32]*tracked // per partition, the end of the finished prefix not yet committed
	changed   chan struct{}      // closed and replaced whenever a record finishes
}

// partLog is one partition's records in flight, oldest first. A revoked
// partition's log is dropped from the map: records of it that finish
// later find their log gone and commit nothing.
type partLog struct {
	recs []*tracked
	last int64 // offset of the newest record added
}

// tracked is one record in flight.
type tracked struct {
	rec  *kgo.Record
	log  *partLog
	size int64
	done bool
}

func newInFlight(maxCount int, maxBytes int64) *inFlight {
	return &inFlight{maxCount: maxCount, maxBytes: maxBytes, parts: map[int32]*partLog{},
		ready: map[int32]*tracked{}, changed: make(chan struct{})}
}

// room is how many more records may be taken now (0: wait).
func (f *inFlight) room() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bytes+f.heldBytes >= f.maxBytes {
		return 0
	}
	return max(f.maxCount-f.count-f.held, 0)
}

// wait blocks until cond holds (checked under the lock) or ctx ends.
func (f *inFlight) wait(ctx context.Context, cond func() bool) error {
	for {
		f.mu.Lock()
		ok, changed := cond(), f.changed
		f.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-changed:
		}
	}
}

// waitRoom waits until at least one record may be taken.
func (f *inFlight) waitRoom(ctx context.Context) error {
	return f.wait(ctx, func() bool { return f.count+f.held < f.maxCount && f.bytes+f.heldBytes < f.maxBytes })
}

// waitIdle waits until every record taken is finished.
func (f *inFlight) waitIdle(ctx context.Context) error {
	return f.wait(ctx, func() bool { return f.count == 0 })
}

// add starts tracking r. Within one assignment a partition's offsets
// only grow, except when the log was cut back under the consumer (an
// unclean leader election): franz-go then reads on from the new end,
// below what was read. Those records are new and must be applied, so the
// partition starts a new log; the old one's records finish without
// committing, as after a revoke.
func (f *inFlight) add(r *kgo.Record) *tracked {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.parts[r.Partition]
	if l != nil && r.Offset <= l.last {
		f.cut(r.Partition, l, r.Offset)
	}
	if l == nil {
		l = &partLog{last: -1}
		f.parts[r.Partition] = l
	}
	l.last = r.Offset
	t := &tracked{rec: r, log: l, size: int64(len(r.Key) + len(r.Value))}
	l.recs = append(l.recs, t)
	f.count++
	f.bytes += t.size
	return t
}

// finish marks records finished, and moves each partition's committable
// end past its finished prefix.
func (f *inFlight) finish(ts ...*tracked) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range ts {
		if t.done {
			continue
		}
		t.done = true
		f.count--
		f.bytes -= t.size
		l := t.log
		if f.parts[t.rec.Partition] != l {
			continue // revoked or lost: its commits are the new owner's
		}
		f.held++
		f.heldBytes += t.size
		n := 0
		for n < len(l.recs) && l.recs[n].done {
			f.held--
			f.heldBytes -= l.recs[n].size
			n++
		}
		if n > 0 {
			f.ready[t.rec.Partition] = l.recs[n-1]
			clear(l.recs[:n])
			l.recs = l.recs[n:]
		}
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

// takeReady returns the records to commit (one per partition whose
// finished prefix grew) and forgets them.
func (f *inFlight) takeReady() []*tracked {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*tracked, 0, len(f.ready))
	for p, t := range f.ready {
		out = append(out, t)
		delete(f.ready, p)
	}
	return out
}

// putBack returns records whose commit failed, unless a later record of
// the partition is ready by now (its commit covers them) or the
// partition's log is no longer theirs (revoked, or cut back).
func (f *inFlight) putBack(ts []*tracked) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range ts {
		if _, newer := f.ready[t.rec.Partition]; !newer && f.parts[t.rec.Partition] == t.log {
			f.ready[t.rec.Partition] = t
		}
	}
}

// drop forgets partitions (revoked or lost) and returns what of them was
// ready to commit. Their records still in flight are finished as usual
// but commit nothing.
func (f *inFlight) drop(parts []int32) []*kgo.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*kgo.Record
	for _, p := range parts {
		if t := f.ready[p]; t != nil {
			out = append(out, t.rec)
		}
		f.forget(p)
	}
	return out
}

// forget drops a partition's log and what of it was ready to commit.
// Its finished records no longer count against the window; its
// unfinished ones do until they finish.
func (f *inFlight) forget(p int32) {
	delete(f.ready, p)
	if l := f.parts[p]; l != nil {
		for _, t := range l.recs {
			if t.done {
				f.held--
				f.heldBytes -= t.size
			}
		}
	}
	delete(f.parts, p)
}

// cut drops from partition p's log l the records at and after offset
// from: the log was cut back there, and they are gone from it. The
// records before from are still the partition's: an unfinished one must
// still hold back the commit. The dropped records finish without
// committing, as after a revoke.
func (f *inFlight) cut(p int32, l *partLog, from int64) {
	gone := &partLog{last: -1}
	keep := l.recs[:0]
	for _, t := range l.recs {
		if t.rec.Offset < from {
			keep = append(keep, t)
			continue
		}
		if t.done {
			f.held--
			f.heldBytes -= t.size
		}
		t.log = gone
	}
	clear(l.recs[len(keep):])
	l.recs = keep
	if t := f.ready[p]; t != nil && t.rec.Offset >= from {
		delete(f.ready, p)
	}
}
