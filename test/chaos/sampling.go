package chaos

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// This file is the old sampling checker: values only (MGET), read at
// sampling instants. The chaos scenarios and the workflow test no longer
// use it (NotifyMonitor and CompareStates see every change, types and
// expiries); only test/reconcile_repair_test.go still does. Delete this
// file once that test moves to them.

// Reader reads the current values of keys from one store; a key that does
// not exist (or has expired) is absent from the map.
type Reader interface {
	Read(ctx context.Context, keys []string) (map[string][]byte, error)
}

// RedisReader reads string keys with MGET, in batches.
type RedisReader struct{ Client goredis.UniversalClient }

// Read implements Reader.
func (r RedisReader) Read(ctx context.Context, keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	for start := 0; start < len(keys); start += 500 {
		batch := keys[start:min(start+500, len(keys))]
		vals, err := r.Client.MGet(ctx, batch...).Result()
		if err != nil {
			return nil, fmt.Errorf("read %d keys: %w", len(batch), err)
		}
		for i, v := range vals {
			if s, ok := v.(string); ok {
				out[batch[i]] = []byte(s)
			}
		}
	}
	return out, nil
}

// Monitor reads the target over and over while the scenario runs and
// counts regressions: a key whose sequence number is smaller than one the
// target showed before. Only an older write applied over a newer one (or
// an older value brought back after a delete) can do that.
type Monitor struct {
	mu          sync.Mutex
	max         map[string]int64
	regressions int64
	examples    []string
	reads       int64
}

// Run reads keys from r every interval until ctx ends. Read errors (the
// target is being faulted too, sometimes) only skip a round.
func (m *Monitor) Run(ctx context.Context, r Reader, keys []string, every time.Duration) {
	for ctx.Err() == nil {
		if vals, err := r.Read(ctx, keys); err == nil {
			m.observe(vals)
		}
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
}

func (m *Monitor) observe(vals map[string][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.max == nil {
		m.max = map[string]int64{}
	}
	m.reads++
	for k, v := range vals {
		seq, ok := Seq(v)
		if !ok {
			continue // not a chaos value; the final check reports it
		}
		if prev := m.max[k]; seq < prev {
			m.regressions++
			if len(m.examples) < 5 {
				m.examples = append(m.examples, fmt.Sprintf("%s: showed %d, then %d", k, prev, seq))
			}
		} else {
			m.max[k] = seq
		}
	}
}

// Regressions is how many times a key went backwards, with a few examples.
func (m *Monitor) Regressions() (int64, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.regressions, append([]string(nil), m.examples...)
}

// SampleResult is what Compare found.
type SampleResult struct {
	Lost, Resurrected, Regressions, Differences int64
	Examples                                    []string
}

// OK is true when nothing differed.
func (r SampleResult) OK() bool {
	return r.Lost == 0 && r.Resurrected == 0 && r.Regressions == 0 && r.Differences == 0
}

// Compare reads keys from both stores once and counts what differs. The
// source is the truth: the writer has stopped.
func Compare(ctx context.Context, src, dst Reader, keys []string) (SampleResult, error) {
	var res SampleResult
	want, err := src.Read(ctx, keys)
	if err != nil {
		return res, fmt.Errorf("source: %w", err)
	}
	got, err := dst.Read(ctx, keys)
	if err != nil {
		return res, fmt.Errorf("target: %w", err)
	}
	note := func(format string, args ...any) {
		if len(res.Examples) < 5 {
			res.Examples = append(res.Examples, fmt.Sprintf(format, args...))
		}
	}
	for _, k := range keys {
		w, inSrc := want[k]
		g, inDst := got[k]
		switch {
		case inSrc && !inDst:
			res.Lost++
			note("%s lost", k)
		case !inSrc && inDst:
			res.Resurrected++
			note("%s deleted in the source, present in the target", k)
		case inSrc && !bytes.Equal(w, g):
			ws, _ := Seq(w)
			gs, _ := Seq(g)
			if gs < ws {
				res.Regressions++
				note("%s: target holds %d, source %d", k, gs, ws)
			} else {
				res.Differences++
				note("%s: target holds %d, source %d (same or newer sequence, other bytes)", k, gs, ws)
			}
		}
	}
	return res, nil
}

// WaitConverged compares the stores until nothing differs or within ends,
// and returns the last comparison.
func WaitConverged(ctx context.Context, src, dst Reader, keys []string, within time.Duration) (SampleResult, error) {
	deadline := time.Now().Add(within)
	for {
		res, err := Compare(ctx, src, dst, keys)
		if err == nil && res.OK() || time.Now().After(deadline) {
			return res, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}
