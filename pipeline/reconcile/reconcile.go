// Package reconcile compares a source with a target, key by key, and
// reports the drift: keys missing in the target, keys whose value, type or
// expiry differ, keys the source could not express as events.
//
//	source pages (Source.Next) ──keys──▶ Target.Lookup ──▶ compare ──▶ Report
//
// It reads both stores through the same code the pipeline uses (the
// source's reader, the sink's mapping), so "equal" means "what the
// pipeline would have written is what the target holds".
package reconcile

import (
	"context"
	"fmt"
	"time"

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

// Found is the target's state of one key.
type Found struct {
	// Exists is false when the key is absent (or deleted).
	Exists   bool
	Value    pipeline.Value
	ExpireAt time.Time
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
	// ExtraChecked is true when the target was also walked for keys the
	// source does not have.
	ExtraChecked bool          `json:"extra_checked"`
	Elapsed      time.Duration `json:"elapsed_ns"`
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

// Run compares every key src yields with tgt.
func Run(ctx context.Context, src Source, tgt Target, opts Options) (Report, error) {
	if opts.TTLTolerance <= 0 {
		opts.TTLTolerance = 2 * time.Second
	}
	if opts.Samples <= 0 {
		opts.Samples = 10
	}
	start := time.Now()
	r := Report{Counts: map[Kind]int64{}, Samples: map[Kind][]Sample{}}
	note := func(k Kind, key []byte, detail string) {
		r.Counts[k]++
		if len(r.Samples[k]) < opts.Samples {
			r.Samples[k] = append(r.Samples[k], Sample{Key: string(key), Detail: detail})
		}
	}
	for {
		b, done, err := src.Next(ctx)
		if err != nil {
			return r, fmt.Errorf("read source: %w", err)
		}
		for _, rej := range b.Rejects {
			note(NotComparable, rej.Key, rej.Err.Error())
		}
		if len(b.Events) > 0 {
			keys := make([][]byte, len(b.Events))
			for i := range b.Events {
				keys[i] = b.Events[i].Key
			}
			found, err := tgt.Lookup(ctx, keys)
			if err != nil {
				return r, fmt.Errorf("read target: %w", err)
			}
			for i := range b.Events {
				e := &b.Events[i]
				r.Compared++
				want, werr := expected(tgt, e)
				f, ok := found[string(e.Key)]
				switch {
				case werr != nil:
					note(Unaddressable, e.Key, werr.Error())
				case !ok:
					note(Unaddressable, e.Key, "the key cannot be written to the target as configured")
				case !f.Exists:
					note(Missing, e.Key, fmt.Sprintf("%s in the source, absent in the target", e.Value.Type))
				case f.Err != nil:
					note(Unreadable, e.Key, f.Err.Error())
				default:
					if d := pipeline.Diff(&want, &f.Value); d != "" {
						note(Different, e.Key, d)
					} else if d := ttlDiff(e.ExpireAt, f.ExpireAt, opts.TTLTolerance); d != "" {
						note(TTLDifferent, e.Key, d)
					} else {
						r.Equal++
					}
				}
			}
		}
		r.Elapsed = time.Since(start)
		if opts.Progress != nil {
			opts.Progress(r)
		}
		if done {
			break
		}
	}
	lister, ok1 := tgt.(KeyLister)
	checker, ok2 := src.(Checker)
	if !ok1 || !ok2 {
		return r, nil
	}
	r.ExtraChecked = true
	err := lister.ListKeys(ctx, func(keys [][]byte) error {
		has, err := checker.Exists(ctx, keys)
		if err != nil {
			return fmt.Errorf("read source: %w", err)
		}
		for _, k := range keys {
			if !has[string(k)] {
				note(Extra, k, "in the target, not in the source")
			}
		}
		r.Elapsed = time.Since(start)
		return nil
	})
	return r, err
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
