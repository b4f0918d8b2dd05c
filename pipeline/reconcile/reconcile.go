// Package reconcile compares a source with a target, key by key, and
// reports the drift: keys missing in the target, keys whose value, type or
// expiry differ, keys the source could not express as events.
//
//	source pages (Source.Next) ──keys──▶ Target.Lookup ──▶ compare ──▶ Report
//
// It reads both stores through the same code the pipeline uses (the
// source's reader, the sink's mapping), so "equal" means "what the
// pipeline would have written is what the target holds".
//
// A difference is read again on both sides before it counts — the target
// first, then the source — and a repair carries the state of that second
// source read into the pipeline (recheck.go, repair.go).
package reconcile

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/pipeline"
)

// Source yields the source's keys a page at a time, read as events.
type Source interface {
	// Next returns the next page; done is true after the last one.
	Next(ctx context.Context) (b pipeline.Batch, done bool, err error)
}

// KeyLister is a target that can list its keys, for the pass that finds
// keys present only in the target.
type KeyLister interface {
	// ListKeys calls fn with the target's live keys, a page at a time.
	ListKeys(ctx context.Context, fn func(keys [][]byte) error) error
}

// Checker is a source that can say which keys exist.
type Checker interface {
	// Exists reports, for each key, whether the source has it (and whether
	// the pipeline would copy it: filters apply).
	Exists(ctx context.Context, keys [][]byte) (map[string]bool, error)
}

// Target looks keys up in the target.
type Target interface {
	// Lookup returns what the target holds for each key it can address;
	// keys it cannot address (see Found) are absent from the map.
	Lookup(ctx context.Context, keys [][]byte) (map[string]Found, error)
}

// Expecter is a target that keeps values in a form of its own (a DynamoDB
// item as a Redis hash or JSON string): reconcile compares what it holds
// with what Expect says the pipeline writes for the event.
type Expecter interface {
	Expect(e *pipeline.Event) (pipeline.Value, error)
}

// Reader is a source that can read keys again, for the re-check of a
// difference and for repair.
type Reader interface {
	// Read returns the source's current state of each key: an upsert
	// event for a key it has and would copy, a delete event (or nothing)
	// for a key it does not have, a reject for a key it cannot express as
	// an event. Each event carries a version at least as new as the read.
	Read(ctx context.Context, keys [][]byte) (pipeline.Batch, error)
}

// Repairer carries repairs into the pipeline.
type Repairer interface {
	// Repair publishes events to the pipeline's topic. They may still be
	// on their way when it returns: ctx stays alive until Wait.
	Repair(ctx context.Context, events []pipeline.Event) error
	// Wait returns once every repair published so far is applied to the
	// target.
	Wait(ctx context.Context) error
}

// Versioner is a target whose Lookup leaves Found.Version out (reading
// versions costs a round trip per page); KeyVersions gives them for the
// keys re-checked.
type Versioner interface {
	KeyVersions(ctx context.Context, keys [][]byte) (map[string]pipeline.Version, error)
}

// Found is the target's state of one key.
type Found struct {
	// Exists is false when the key is absent (or deleted).
	Exists   bool
	Value    pipeline.Value
	ExpireAt time.Time
	// Version is the version the target holds for the key, a tombstone's
	// included; nil when it keeps none.
	Version pipeline.Version
	// Err says why an existing key could not be read back as a value.
	Err error
}

// Options tune a comparison.
type Options struct {
	// TTLTolerance is how far apart two expiries may be and still count as
	// equal; default 2s (DynamoDB stores whole seconds, rounded up).
	TTLTolerance time.Duration
	// Samples is how many keys to keep as examples of each kind of
	// difference; default 10.
	Samples int
	// Progress, if set, is called after each page with the report so far.
	Progress func(Report)
	// RecheckDelay is how long a difference is left to settle before it
	// is read again on both sides (changes still in flight clear); default
	// 2s. Rechecks is how many times it is read again before it counts;
	// default 3. They apply when the source is a Reader.
	RecheckDelay time.Duration
	Rechecks     int
	// Pending is how many differing keys wait for their re-check at most;
	// default 1000 (it bounds memory, not the number of differences).
	Pending int
	// Fraction is the share of the keyspace the source reads when
	// sampling (0 or 1: all of it); the report states the confidence.
	Fraction float64
	// Repair, if set, receives an event for every difference that
	// remains after its re-checks: the source's state read after the
	// target's, at a version newer than the one the target held (see
	// repairVersion). Extra keys get a delete only with DeleteExtra. A run
	// with repairs ends with Repair.Wait and a re-check of every repaired
	// key (Report.Remaining).
	Repair      Repairer
	DeleteExtra bool
	// ClockReads says the source stamps each read with the time it was
	// made, in the pipeline's epoch (Redis: the server's clock): a repair
	// then carries the read's version when it is newer than the target's,
	// and a key whose read is not, in the same epoch, is left unrepaired
	// (Report.RepairDeferred) — the source's clock disagrees with the
	// versions in the target. False for a source whose reads carry a
	// version that does not say when they were made (DynamoDB: a snapshot
	// row's): every repair is stamped just above the target's version.
	ClockReads bool
	// MaxRepairs bounds the repaired keys remembered for the final
	// re-check; default 1,000,000. Past it, repairs still go out but are
	// not re-checked (Report.Unverified).
	MaxRepairs int
}

func (o *Options) setDefaults() {
	if o.TTLTolerance <= 0 {
		o.TTLTolerance = 2 * time.Second
	}
	if o.Samples <= 0 {
		o.Samples = 10
	}
	if o.RecheckDelay <= 0 {
		o.RecheckDelay = 2 * time.Second
	}
	if o.Rechecks <= 0 {
		o.Rechecks = 3
	}
	if o.Pending <= 0 {
		o.Pending = 1000
	}
	if o.MaxRepairs <= 0 {
		o.MaxRepairs = 1_000_000
	}
}

// Kind is a kind of difference.
type Kind string

// The kinds of difference.
const (
	Missing       Kind = "missing"        // in the source, not in the target
	Extra         Kind = "extra"          // in the target, not in the source
	Different     Kind = "different"      // value or type differs
	TTLDifferent  Kind = "ttl"            // expiry differs beyond the tolerance
	Unreadable    Kind = "unreadable"     // the target item is not in the pipeline's mapping
	Unaddressable Kind = "unaddressable"  // the key cannot be a target key (e.g. binary key, S key attribute)
	NotComparable Kind = "not-comparable" // the source could not read the key as an event (too big, unsupported type)
)

// Kinds are all the kinds of difference, in the order reports list them.
var Kinds = []Kind{Missing, Extra, Different, TTLDifferent, Unreadable, Unaddressable, NotComparable}

// Sample is one example of a difference.
type Sample struct {
	Key    string `json:"key"`
	Detail string `json:"detail"`
}

// Report is the result of a comparison.
type Report struct {
	Compared int64 `json:"compared"`
	Equal    int64 `json:"equal"`
	// Counts holds the number of keys of each kind of difference.
	Counts  map[Kind]int64    `json:"counts"`
	Samples map[Kind][]Sample `json:"samples"`
	// Cleared counts keys that differed at first sight and matched on a
	// re-check: changes that were still on their way.
	Cleared int64 `json:"cleared_on_recheck"`
	// ExtraChecked is true when the target was also walked for keys the
	// source does not have.
	ExtraChecked bool `json:"extra_checked"`
	// Fraction is the share of the keyspace read (1 for all of it);
	// DivergenceBound is, for a sample, the 95% upper confidence bound
	// on the share of all keys that differ.
	Fraction        float64 `json:"fraction"`
	DivergenceBound float64 `json:"divergence_upper_bound_95,omitempty"`
	// Repair results: events published, keys still differing after they
	// were applied (with examples), repairs past MaxRepairs not re-checked.
	Repaired         int64    `json:"repaired,omitempty"`
	Remaining        int64    `json:"remaining,omitempty"`
	RemainingSamples []Sample `json:"remaining_samples,omitempty"`
	Unverified       int64    `json:"unverified,omitempty"`
	// RepairSkipped counts differences no event can repair (e.g. an
	// empty key in the target); RemainingSamples shows them.
	RepairSkipped int64 `json:"repair_skipped,omitempty"`
	// RepairDeferred counts differences left unrepaired because no
	// version was safe for the repair (Options.ClockReads): the next run
	// checks them again. RemainingSamples shows them.
	RepairDeferred int64         `json:"repair_deferred,omitempty"`
	Elapsed        time.Duration `json:"elapsed_ns"`
}

// Differences is the number of keys that do not match.
func (r *Report) Differences() int64 {
	var n int64
	for k, c := range r.Counts {
		if k != NotComparable {
			n += c
		}
	}
	return n
}

// Unresolved is the number of keys that still differ at the end of the
// run: the differences, or after a repair the keys it did not fix.
func (r *Report) Unresolved() int64 {
	if r.Repaired == 0 {
		return r.Differences()
	}
	// Repaired keys count once they are verified; those past MaxRepairs
	// are not known to be fixed.
	return r.Differences() - r.Repaired + r.Remaining + r.Unverified
}

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

// DisplayKey is a key as a report shows it: as it is when it is UTF-8
// text (a DynamoDB item's key is its DynamoDB JSON), otherwise quoted
// with Go escapes ("\xff").
func DisplayKey(key []byte) string {
	if utf8.Valid(key) {
		return string(key)
	}
	return strconv.Quote(string(key))
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

// classify compares the source's state of a key (an upsert or a delete
// event) with the target's; "" means equal.
func (u *run) classify(e *pipeline.Event, f Found, addressable bool) (Kind, string) {
	if e.Op == pipeline.OpUpsert && expiring(e.ExpireAt, u.opts.TTLTolerance) {
		// Its time has come: it is gone, whatever the source still shows.
		// Redis removes an expired key at once; DynamoDB's TTL deletes an
		// expired item when it gets to it, days later at worst.
		if addressable && f.Exists && !expiring(f.ExpireAt, u.opts.TTLTolerance) {
			return Extra, fmt.Sprintf("expired in the source at %s, in the target without that expiry", e.ExpireAt.UTC().Format(time.RFC3339))
		}
		return "", ""
	}
	if e.Op != pipeline.OpUpsert {
		// A target item whose expiry has come is gone too, even while
		// DynamoDB's TTL has not removed it yet.
		if addressable && f.Exists && !expiring(f.ExpireAt, u.opts.TTLTolerance) {
			return Extra, "in the target, not in the source"
		}
		return "", ""
	}
	want, werr := expected(u.tgt, e)
	switch {
	case werr != nil:
		return Unaddressable, werr.Error()
	case !addressable:
		return Unaddressable, "the key cannot be written to the target as configured"
	case !f.Exists:
		return Missing, fmt.Sprintf("%s in the source, absent in the target", e.Value.Type)
	case f.Err != nil:
		return Unreadable, f.Err.Error()
	}
	if d := pipeline.Diff(&want, &f.Value); d != "" {
		return Different, d
	}
	if d := ttlDiff(e.ExpireAt, f.ExpireAt, u.opts.TTLTolerance); d != "" {
		return TTLDifferent, d
	}
	return "", ""
}

// expiring reports whether an expiry has come, or comes within tol (a key
// that expires while it is compared counts as gone on both sides).
func expiring(at time.Time, tol time.Duration) bool {
	return !at.IsZero() && time.Until(at) < tol
}

// UpperBound95 is the 95% upper confidence bound on the share of keys
// that differ, from differences found among compared sampled keys:
// the rule of three when none differ, the Wilson score bound otherwise.
func UpperBound95(compared, differences int64) float64 {
	if compared <= 0 {
		return 1
	}
	n := float64(compared)
	if differences == 0 {
		return min(1, 3/n)
	}
	const z = 1.959964
	p := float64(differences) / n
	center := p + z*z/(2*n)
	margin := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n))
	return min(1, (center+margin)/(1+z*z/n))
}

// expected is the value the target should hold for e.
func expected(tgt Target, e *pipeline.Event) (pipeline.Value, error) {
	if x, ok := tgt.(Expecter); ok {
		return x.Expect(e)
	}
	return e.Value, nil
}

func ttlDiff(src, tgt time.Time, tolerance time.Duration) string {
	switch {
	case src.IsZero() && tgt.IsZero():
		return ""
	case src.IsZero():
		return fmt.Sprintf("no expiry in the source, expires %s in the target", tgt.UTC().Format(time.RFC3339))
	case tgt.IsZero():
		return fmt.Sprintf("expires %s in the source, never in the target", src.UTC().Format(time.RFC3339))
	}
	if d := src.Sub(tgt); d > tolerance || d < -tolerance {
		return fmt.Sprintf("expires %s in the source, %s in the target", src.UTC().Format(time.RFC3339Nano), tgt.UTC().Format(time.RFC3339))
	}
	return ""
}
