package redis

import (
	"context"
	"sync"
)

// gate is a counter that only grows, and that can be waited on until it
// reaches a value.
type gate struct {
	mu      sync.Mutex
	v       int64
	changed chan struct{} // closed and replaced whenever v grows
}

func newGate() *gate { return &gate{changed: make(chan struct{})} }

// add grows the counter by n.
func (g *gate) add(n int64) {
	if n <= 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.v += n
	close(g.changed)
	g.changed = make(chan struct{})
}

// set raises the counter to v (a lower v changes nothing).
func (g *gate) set(v int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if v <= g.v {
		return
	}
	g.v = v
	close(g.changed)
	g.changed = make(chan struct{})
}

// wait returns once the counter is at least v, or ctx's error.
func (g *gate) wait(ctx context.Context, v int64) error {
	for {
		g.mu.Lock()
		reached, changed := g.v >= v, g.changed
		g.mu.Unlock()
		if reached {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}
