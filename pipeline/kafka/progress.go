package kafka

import (
	"context"
	"maps"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Progress is the set of offsets a worker has committed, per partition,
// with a way to wait until it reaches a target.
type Progress struct {
	mu        sync.Mutex
	committed map[int32]int64
	changed   chan struct{} // closed and replaced on every advance
}

func newProgress() *Progress {
	return &Progress{committed: map[int32]int64{}, changed: make(chan struct{})}
}

// advance records the commit of recs: the next offset to consume of each
// partition is one past its last record.
func (p *Progress) advance(recs []*kgo.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range recs {
		if next := r.Offset + 1; next > p.committed[r.Partition] {
			p.committed[r.Partition] = next
		}
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// Committed returns a copy of the committed offsets.
func (p *Progress) Committed() map[int32]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.committed)
}

// WaitFor blocks until, for every partition of target, the worker has
// committed at least the target offset, or the base offset (committed by
// an earlier run, say) already reaches it. It returns ctx's error if ctx
// ends first.
func (p *Progress) WaitFor(ctx context.Context, target, base map[int32]int64) error {
	for {
		p.mu.Lock()
		done := true
		for part, want := range target {
			if p.committed[part] < want && base[part] < want {
				done = false
				break
			}
		}
		changed := p.changed
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Lag returns, for every partition of target, how many offsets the worker
// still has to commit to reach it.
func (p *Progress) Lag(target, base map[int32]int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lag int64
	for part, want := range target {
		have := max(p.committed[part], base[part])
		if want > have {
			lag += want - have
		}
	}
	return lag
}
