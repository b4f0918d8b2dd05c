package sourcetest

import (
	"context"
	"sync"

	"github.com/cutover/cutover/pipeline"
)

// log is a publisher that keeps every event it is given, in order. It
// acknowledges the first durable batches at once; after that, when hold
// is set, it keeps accepting events but acknowledges none, and once
// stall batches went unacknowledged it blocks Publish until the context
// ends: a log that stopped answering, as before a crash.
type log struct {
	mu      sync.Mutex
	events  []pipeline.Event
	durable int // how many of events were acknowledged
	batches int
	// hold: acknowledge only the first durable batches; stall: block
	// after that many unacknowledged batches (0: never).
	hold           bool
	durableBatches int
	stall          int
	stalled        chan struct{} // closed when Publish first blocks
}

func newLog() *log { return &log{stalled: make(chan struct{})} }

// holding returns a log that acknowledges n batches, then none, and
// blocks after stall more.
func holding(n, stall int) *log {
	l := newLog()
	l.hold, l.durableBatches, l.stall = true, n, stall
	return l
}

func (l *log) Publish(ctx context.Context, b pipeline.Batch, onDurable func()) error {
	l.mu.Lock()
	l.batches++
	ack := !l.hold || l.batches <= l.durableBatches
	block := l.hold && l.stall > 0 && l.batches > l.durableBatches+l.stall
	if block {
		select {
		case <-l.stalled:
		default:
			close(l.stalled)
		}
		l.mu.Unlock()
		<-ctx.Done()
		return ctx.Err()
	}
	l.events = append(l.events, b.Events...)
	if ack {
		l.durable = len(l.events)
	}
	l.mu.Unlock()
	if ack && onDurable != nil {
		onDurable()
	}
	return nil
}

func (l *log) Broadcast(ctx context.Context, e pipeline.Event, onDurable func()) error {
	if e.Scope != nil && e.Scope.Partitions == 0 {
		s := *e.Scope
		s.Partition, s.Partitions = 0, 1 // one partition: the scope covers every key
		e.Scope = &s
	}
	return l.Publish(ctx, pipeline.Batch{Events: []pipeline.Event{e}}, onDurable)
}

func (l *log) Flush(ctx context.Context) error {
	l.mu.Lock()
	held := l.hold
	l.mu.Unlock()
	if held {
		<-ctx.Done() // what is held is never acknowledged
		return ctx.Err()
	}
	return nil
}

// all returns every event kept so far, acknowledged or not.
func (l *log) all() []pipeline.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]pipeline.Event(nil), l.events...)
}
