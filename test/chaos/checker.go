package chaos

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

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

// Result is what a scenario proves, or fails to.
type Result struct {
	Scenario string
	Faults   int
	Events   int64
	Keys     int
	// Lost: in the source, not in the target. Resurrected: in the target,
	// deleted (or expired) in the source. Regressions: seen going
	// backwards in the target, or older than the source at the end.
	// Differences: any other value that differs, plus what reconcile
	// still reports (types, TTLs).
	Lost, Resurrected, Regressions, Differences int64
	Examples                                    []string
	Took                                        time.Duration
}

// OK is true when the scenario kept every guarantee.
func (r Result) OK() bool {
	return r.Lost == 0 && r.Resurrected == 0 && r.Regressions == 0 && r.Differences == 0
}

func (r Result) String() string {
	return fmt.Sprintf("chaos %-22s faults=%-3d events=%-8d keys=%-7d lost=%d regressions=%d resurrected=%d differences=%d (%s)",
		r.Scenario, r.Faults, r.Events, r.Keys, r.Lost, r.Regressions, r.Resurrected, r.Differences, r.Took.Round(time.Second))
}

// Compare reads keys from both stores once and counts what differs. The
// source is the truth: the writer has stopped.
func Compare(ctx context.Context, src, dst Reader, keys []string) (Result, error) {
	var res Result
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
func WaitConverged(ctx context.Context, src, dst Reader, keys []string, within time.Duration) (Result, error) {
	deadline := time.Now().Add(within)
	for {
		res, err := Compare(ctx, src, dst, keys)
		if err == nil && res.OK() || time.Now().After(deadline) {
			return res, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}
