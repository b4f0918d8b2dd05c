package pipelinetest

import (
	"context"
	"sync"

	"github.com/cutover/cutover/pipeline"
)

// Publisher keeps the events it is given, in order; everything is
// durable at once. The zero value is ready.
type Publisher struct {
	mu      sync.Mutex
	events  []pipeline.Event
	rejects []pipeline.Reject
}

var _ pipeline.Publisher = (*Publisher)(nil)

// Publish keeps b and calls onDurable.
func (p *Publisher) Publish(_ context.Context, b pipeline.Batch, onDurable func()) error {
	p.mu.Lock()
	p.events = append(p.events, b.Events...)
	p.rejects = append(p.rejects, b.Rejects...)
	p.mu.Unlock()
	if onDurable != nil {
		onDurable()
	}
	return nil
}

// Broadcast keeps e once.
func (p *Publisher) Broadcast(ctx context.Context, e pipeline.Event, onDurable func()) error {
	return p.Publish(ctx, pipeline.Batch{Events: []pipeline.Event{e}}, onDurable)
}

// Flush has nothing to wait for.
func (p *Publisher) Flush(context.Context) error { return nil }

// Events returns a copy of the events kept so far.
func (p *Publisher) Events() []pipeline.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pipeline.Event(nil), p.events...)
}

// Rejects returns a copy of the rejects kept so far.
func (p *Publisher) Rejects() []pipeline.Reject {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pipeline.Reject(nil), p.rejects...)
}

// Ops returns the events kept so far of one operation.
func (p *Publisher) Ops(op pipeline.Op) []pipeline.Event {
	var out []pipeline.Event
	for _, e := range p.Events() {
		if e.Op == op {
			out = append(out, e)
		}
	}
	return out
}
