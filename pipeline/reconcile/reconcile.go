package reconcile

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/pipeline"
)

// run is one comparison in progress.
type run struct {
	src     Source
	tgt     Target
	opts    Options
	r       Report
	start   time.Time
	pending []pendingKey
	// repaired holds the keys repaired, for the final re-check.
	repaired [][]byte
}

type pendingKey struct {
	key  []byte
	seen time.Time
}

// Run compares every key src yields with tgt. Differences are re-read on
// both sides after opts.RecheckDelay (when src is a Reader) before they
// count, and repaired when opts.Repair is set.
func Run(ctx context.Context, src Source, tgt Target, opts Options) (Report, error) {
	opts.setDefaults()
	if opts.Fraction <= 0 || opts.Fraction > 1 {
		opts.Fraction = 1
	}
	if _, ok := src.(Reader); !ok && opts.Repair != nil {
		return Report{}, fmt.Errorf("repair needs a source that can read keys again")
	}
	u := &run{src: src, tgt: tgt, opts: opts, start: time.Now(),
		r: Report{Counts: map[Kind]int64{}, Samples: map[Kind][]Sample{}, Fraction: opts.Fraction}}
	if err := u.walk(ctx); err != nil {
		return u.r, err
	}
	if err := u.walkTarget(ctx); err != nil {
		return u.r, err
	}
	if err := u.settle(ctx); err != nil {
		return u.r, err
	}
	if opts.Fraction < 1 {
		u.r.DivergenceBound = UpperBound95(u.r.Compared, u.r.Differences())
	}
	if err := u.verifyRepairs(ctx); err != nil {
		return u.r, err
	}
	u.r.Elapsed = time.Since(u.start)
	return u.r, nil
}

func (u *run) note(k Kind, key []byte, detail string) {
	u.r.Counts[k]++
	if len(u.r.Samples[k]) < u.opts.Samples {
		u.r.Samples[k] = append(u.r.Samples[k], Sample{Key: DisplayKey(key), Detail: detail})
	}
}

func (u *run) progress() {
	u.r.Elapsed = time.Since(u.start)
	if u.opts.Progress != nil {
		u.opts.Progress(u.r)
	}
}

// lookahead is how many source pages are read and looked up in the
// target ahead of the comparison: reads of both stores overlap, and
// memory stays bounded by a few pages.
const lookahead = 4

// looked is a source page with the target's state of its keys.
type looked struct {
	b     pipeline.Batch
	found map[string]Found
	err   error
}

// walk reads the source page by page and compares each key. Pages are
// read in order, looked up in the target concurrently, and compared in
// order.
func (u *run) walk(ctx context.Context) error {
	return ordered(ctx, func(ctx context.Context, emit func(func() looked) error) error {
		for {
			b, done, err := u.src.Next(ctx)
			if err != nil {
				return fmt.Errorf("read source: %w", err)
			}
			if err := emit(func() looked { return u.lookup(ctx, b) }); err != nil {
				return err
			}
			if done {
				return nil
			}
		}
	}, func(ctx context.Context, l looked) error {
		if l.err != nil {
			return l.err
		}
		return u.compare(ctx, &l)
	})
}

// ordered runs a pipeline: produce emits work in order; up to lookahead
// pieces run concurrently; consume takes their results in the order they
// were emitted, one at a time.
//
// consume runs under ctx, not under the group's context, which ends as
// soon as the group is done: a re-check it runs may publish repairs, and
// the producer fails a record still buffered when its context ends — the
// repairs must stay on their way until Repairer.Wait.
func ordered[T any](ctx context.Context, produce func(context.Context, func(func() T) error) error,
	consume func(context.Context, T) error) error {
	g, gctx := errgroup.WithContext(ctx)
	results := make(chan chan T, lookahead)
	g.Go(func() error {
		defer close(results)
		return produce(gctx, func(work func() T) error {
			res := make(chan T, 1)
			select {
			case results <- res:
			case <-gctx.Done():
				return gctx.Err()
			}
			go func() { res <- work() }()
			return nil
		})
	})
	g.Go(func() error {
		for res := range results {
			select {
			case r := <-res:
				if gctx.Err() != nil {
					return gctx.Err()
				}
				if err := consume(ctx, r); err != nil {
					return err
				}
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	return g.Wait()
}

// lookup reads the target's state of a source page's keys.
func (u *run) lookup(ctx context.Context, b pipeline.Batch) looked {
	if len(b.Events) == 0 {
		return looked{b: b}
	}
	keys := make([][]byte, len(b.Events))
	for i := range b.Events {
		keys[i] = b.Events[i].Key
	}
	found, err := u.tgt.Lookup(ctx, keys)
	if err != nil {
		err = fmt.Errorf("read target: %w", err)
	}
	return looked{b: b, found: found, err: err}
}

// compare takes one page's first-sight results.
func (u *run) compare(ctx context.Context, l *looked) error {
	for _, rej := range l.b.Rejects {
		u.note(NotComparable, rej.Key, rej.Err.Error())
	}
	for i := range l.b.Events {
		e := &l.b.Events[i]
		u.r.Compared++
		f, ok := l.found[string(e.Key)]
		kind, detail := u.classify(e, f, ok)
		if err := u.differs(ctx, e.Key, kind, detail); err != nil {
			return err
		}
	}
	u.progress()
	return nil
}

// walkTarget lists the target's keys and looks for those the source lacks.
func (u *run) walkTarget(ctx context.Context) error {
	lister, ok1 := u.tgt.(KeyLister)
	checker, ok2 := u.src.(Checker)
	if !ok1 || !ok2 || u.opts.Fraction < 1 {
		return nil
	}
	u.r.ExtraChecked = true
	type page struct {
		keys [][]byte
		has  map[string]bool
		err  error
	}
	return ordered(ctx, func(ctx context.Context, emit func(func() page) error) error {
		return lister.ListKeys(ctx, func(keys [][]byte) error {
			return emit(func() page {
				has, err := checker.Exists(ctx, keys)
				return page{keys: keys, has: has, err: err}
			})
		})
	}, func(ctx context.Context, p page) error {
		if p.err != nil {
			return fmt.Errorf("read source: %w", p.err)
		}
		for _, k := range p.keys {
			if !p.has[string(k)] {
				if err := u.differs(ctx, k, Extra, "in the target, not in the source"); err != nil {
					return err
				}
			}
		}
		u.progress()
		return nil
	})
}

// differs takes a first-sight result: equal, a difference to re-check,
// or (with no way to re-read the source, or nothing a re-read changes) a
// difference that counts now.
func (u *run) differs(ctx context.Context, key []byte, kind Kind, detail string) error {
	switch kind { //nolint:exhaustive // the other kinds are re-checked below
	case "":
		u.r.Equal++
		return nil
	case Unaddressable:
		u.note(kind, key, detail)
		return nil
	}
	if _, ok := u.src.(Reader); !ok {
		u.note(kind, key, detail)
		return nil
	}
	u.pending = append(u.pending, pendingKey{key: key, seen: time.Now()})
	if len(u.pending) >= u.opts.Pending {
		return u.settle(ctx)
	}
	return nil
}
