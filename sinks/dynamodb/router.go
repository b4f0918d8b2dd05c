package dynamodb

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/reconcile"
)

// Route sends the keys matching a Redis glob pattern to a sink.
type Route struct {
	Match string
	Sink  *Sink
}

// Router is the DynamoDB target of a pipeline: one or more tables, each a
// Sink. A key goes to the first route whose pattern matches it, else to
// the fallback; with neither it is rejected (and so dead-lettered), never
// dropped. A pipeline without rules is a Router with just a fallback.
type Router struct {
	routes   []Route
	fallback *Sink
}

var _ pipeline.Sink = (*Router)(nil)

var (
	_ reconcile.Target    = (*Router)(nil)
	_ reconcile.KeyLister = (*Router)(nil)
	_ reconcile.Expecter  = (*Router)(nil)
)

// NewRouter routes keys by routes, in order, then to fallback (nil for
// none).
func NewRouter(routes []Route, fallback *Sink) *Router {
	return &Router{routes: routes, fallback: fallback}
}

// Sinks are every table's sink, routes first.
func (r *Router) Sinks() []*Sink {
	out := make([]*Sink, 0, len(r.routes)+1)
	for _, rt := range r.routes {
		out = append(out, rt.Sink)
	}
	if r.fallback != nil {
		out = append(out, r.fallback)
	}
	return out
}

// Tables names the tables written, for messages.
func (r *Router) Tables() string {
	var names []string
	for _, s := range r.Sinks() {
		names = append(names, s.opts.Table)
	}
	return strings.Join(names, ", ")
}

// route is the sink of a key, nil when none takes it.
func (r *Router) route(key []byte) *Sink {
	for _, rt := range r.routes {
		if pipeline.Match(rt.Match, string(key)) {
			return rt.Sink
		}
	}
	return r.fallback
}

// Prepare prepares every table.
func (r *Router) Prepare(ctx context.Context) error {
	for _, s := range r.Sinks() {
		if err := s.Prepare(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Apply implements pipeline.Sink: each table's events are applied
// concurrently; a truncate sweeps every table.
func (r *Router) Apply(ctx context.Context, events []pipeline.Event) ([]pipeline.Result, error) {
	if len(events) == 1 && events[0].Op == pipeline.OpTruncate {
		for _, s := range r.Sinks() {
			if _, err := s.Apply(ctx, events); err != nil {
				return nil, err
			}
		}
		return []pipeline.Result{{Outcome: pipeline.Applied}}, nil
	}
	results := make([]pipeline.Result, len(events))
	groups := map[*Sink][]int{}
	for i := range events {
		s := r.route(events[i].Key)
		if s == nil {
			results[i] = pipeline.Result{Outcome: pipeline.Rejected, Err: fmt.Errorf(
				"%w: key %q matches no rule of the DynamoDB sink and there is no default table (add a rule, or set sink.dynamodb.table)",
				pipeline.ErrUnmappable, events[i].Key)}
			continue
		}
		groups[s] = append(groups[s], i)
	}
	apply := func(ctx context.Context, s *Sink, idx []int) error {
		batch := make([]pipeline.Event, len(idx))
		for j, i := range idx {
			batch[j] = events[i]
		}
		res, err := s.Apply(ctx, batch)
		if err != nil {
			return err
		}
		for j, i := range idx {
			results[i] = res[j]
		}
		return nil
	}
	if len(groups) == 1 {
		// One table (the worker's usual call of one event): in the
		// caller's goroutine, whose stack is already grown.
		for s, idx := range groups {
			if err := apply(ctx, s, idx); err != nil {
				return nil, err
			}
		}
		return results, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	for s, idx := range groups {
		g.Go(func() error { return apply(gctx, s, idx) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// Throttled reports whether any table throttled a write lately.
func (r *Router) Throttled() bool {
	for _, s := range r.Sinks() {
		if s.Throttled() {
			return true
		}
	}
	return false
}

// Stats sums every table's counters; RateLimit is the sum of the tables'
// paces, 0 when none is paced.
func (r *Router) Stats() Stats {
	var t Stats
	for _, s := range r.Sinks() {
		st := s.Stats()
		t.Writes += st.Writes
		t.Throttles += st.Throttles
		t.Retries += st.Retries
		t.Swept += st.Swept
		t.RateLimit += st.RateLimit
	}
	return t
}

// Lookup implements reconcile.Target; a key no table takes is absent.
func (r *Router) Lookup(ctx context.Context, keys [][]byte) (map[string]reconcile.Found, error) {
	groups := map[*Sink][][]byte{}
	for _, k := range keys {
		if s := r.route(k); s != nil {
			groups[s] = append(groups[s], k)
		}
	}
	out := make(map[string]reconcile.Found, len(keys))
	for s, ks := range groups {
		found, err := s.Lookup(ctx, ks)
		if err != nil {
			return nil, err
		}
		for k, f := range found {
			out[k] = f
		}
	}
	return out, nil
}

// ListKeys implements reconcile.KeyLister: every table's keys, as event
// keys. A key listed from a table that its rule would not route there
// (the table holds items from elsewhere) is still listed: reconcile then
// reports it as extra if the source lacks it.
func (r *Router) ListKeys(ctx context.Context, fn func(keys [][]byte) error) error {
	for _, s := range r.Sinks() {
		if err := s.ListKeys(ctx, fn); err != nil {
			return err
		}
	}
	return nil
}

// Expect implements reconcile.Expecter.
func (r *Router) Expect(e *pipeline.Event) (pipeline.Value, error) {
	s := r.route(e.Key)
	if s == nil {
		return pipeline.Value{}, fmt.Errorf("key %q matches no rule of the DynamoDB sink", e.Key)
	}
	return s.Expect(e)
}
