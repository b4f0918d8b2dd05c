package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Writer changes a fixed set of Redis string keys; every value it writes
// starts with a sequence number larger than any it wrote before, so the
// order of any two values of a key is known from the values alone.
//
// Its commands go through one connection, pipelined: Redis applies them
// in the order they were numbered, so a key's sequence only grows in the
// source, and a target that ever shows a smaller one than it showed before
// has applied an older write over a newer one.
type Writer struct {
	// Keys is how many keys it works on: Prefix + 0 .. Keys-1.
	Keys int
	// Prefix starts every key; default "c:".
	Prefix string
	// Seed makes the sequence of operations reproducible.
	Seed uint64
	// Rate is operations per second; 0 means as fast as Redis answers.
	Rate int
	// HotKeys is how many keys (the first ones) take HotShare of the
	// operations: a few keys updated many times a second.
	HotKeys  int
	HotShare float64
	// TTLShare is the fraction of writes that set a TTL between MinTTL and
	// MaxTTL (defaults 1s and 120s).
	TTLShare       float64
	MinTTL, MaxTTL time.Duration
	// Deletes is the fraction of operations that delete a key; default
	// 0.1. Another tenth change a TTL (EXPIRE or PERSIST) without a write.
	Deletes float64
	// FillTTL gives every key Fill writes a TTL between MinTTL and MaxTTL.
	FillTTL bool

	seq, ops, failed atomic.Int64
	paused           atomic.Bool
	// busy is true while Run may have a batch in flight: it is set
	// before Run looks at paused, so Quiesce cannot miss a batch.
	busy atomic.Bool
}

// Pause stops the writer between two batches until Resume; a batch
// already sent still completes.
func (w *Writer) Pause() { w.paused.Store(true) }

// Resume lets a paused writer go on.
func (w *Writer) Resume() { w.paused.Store(false) }

// Quiesce pauses the writer and waits until the batch it had in flight,
// if any, has completed: from then on the source changes only by expiry.
func (w *Writer) Quiesce(ctx context.Context) error {
	w.Pause()
	return waitIdle(ctx, &w.busy)
}

// waitIdle waits until busy is false, or ctx ends.
func waitIdle(ctx context.Context, busy *atomic.Bool) error {
	for busy.Load() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the writer to pause: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// Key is the name of key i.
func (w *Writer) Key(i int) string { return w.prefix() + strconv.Itoa(i) }

// KeyNames are all the keys the writer works on.
func (w *Writer) KeyNames() []string {
	keys := make([]string, w.Keys)
	for i := range keys {
		keys[i] = w.Key(i)
	}
	return keys
}

// Ops is how many operations were sent.
func (w *Writer) Ops() int64 { return w.ops.Load() }

// Failed is how many operations returned an error (a connection reset
// while the source restarts, say: the operation may or may not have run,
// which the checker does not assume).
func (w *Writer) Failed() int64 { return w.failed.Load() }

func (w *Writer) prefix() string {
	if w.Prefix == "" {
		return "c:"
	}
	return w.Prefix
}

// Fill writes every key once, without TTL, so a snapshot has them all.
func (w *Writer) Fill(ctx context.Context, cl goredis.UniversalClient) error {
	rng := rand.New(rand.NewPCG(w.Seed, 7))
	for start := 0; start < w.Keys; start += 1000 {
		pipe := cl.Pipeline()
		for i := start; i < min(start+1000, w.Keys); i++ {
			var ttl time.Duration
			if w.FillTTL {
				ttl = w.ttl(rng)
			}
			pipe.Set(ctx, w.Key(i), w.value(rng), ttl)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("seed the chaos keys: %w", err)
		}
	}
	return nil
}

// Run writes until ctx ends. Errors are counted, not returned: a fault
// scenario breaks the writer's connection on purpose.
func (w *Writer) Run(ctx context.Context, cl goredis.UniversalClient) {
	rng := rand.New(rand.NewPCG(w.Seed, 11))
	perTick, every := 100, time.Duration(0)
	if w.Rate > 0 {
		// Batches of a millisecond's worth, at most 100 a second apart.
		perTick = max(1, w.Rate/1000)
		every = time.Second * time.Duration(perTick) / time.Duration(w.Rate)
	}
	next := time.Now()
	defer w.busy.Store(false)
	for ctx.Err() == nil {
		w.busy.Store(true)
		for w.paused.Load() && ctx.Err() == nil {
			w.busy.Store(false)
			time.Sleep(10 * time.Millisecond)
			next = time.Now()
			w.busy.Store(true)
		}
		if every > 0 {
			next = next.Add(every)
			if d := time.Until(next); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
		}
		pipe := cl.Pipeline()
		for range perTick {
			w.op(ctx, pipe, rng)
		}
		cmds, err := pipe.Exec(ctx)
		w.ops.Add(int64(len(cmds)))
		if err != nil {
			for _, c := range cmds {
				if c.Err() != nil && c.Err() != goredis.Nil { //nolint:errorlint // go-redis returns Nil as is
					w.failed.Add(1)
				}
			}
			if ctx.Err() == nil {
				time.Sleep(20 * time.Millisecond) // a broken connection: let it come back
			}
		}
	}
}

func (w *Writer) op(ctx context.Context, p goredis.Pipeliner, rng *rand.Rand) {
	i := rng.IntN(w.Keys)
	if w.HotKeys > 0 && rng.Float64() < w.HotShare {
		i = rng.IntN(w.HotKeys)
	}
	k := w.Key(i)
	deletes := w.Deletes
	if deletes == 0 {
		deletes = 0.1
	}
	switch r := rng.Float64(); {
	case r < deletes:
		p.Del(ctx, k)
	case r < deletes+0.07:
		p.Expire(ctx, k, w.ttl(rng))
	case r < deletes+0.1:
		p.Persist(ctx, k)
	default:
		var ttl time.Duration
		if rng.Float64() < w.TTLShare {
			ttl = w.ttl(rng)
		}
		p.Set(ctx, k, w.value(rng), ttl)
	}
}

func (w *Writer) ttl(rng *rand.Rand) time.Duration {
	lo, hi := w.MinTTL, w.MaxTTL
	if lo == 0 {
		lo = time.Second
	}
	if hi <= lo {
		hi = 120 * time.Second
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// value is the next sequence number, zero-padded, then 16 to 80 random
// bytes.
func (w *Writer) value(rng *rand.Rand) []byte {
	b := fmt.Appendf(nil, "%016d:", w.seq.Add(1))
	for range 16 + rng.IntN(64) {
		b = append(b, byte(rng.IntN(256)))
	}
	return b
}

// Seq is the sequence number a value of the writer starts with; ok is
// false for a value it did not write.
func Seq(value []byte) (seq int64, ok bool) {
	if len(value) < 17 || value[16] != ':' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(value[:16]), 10, 64)
	return n, err == nil
}
