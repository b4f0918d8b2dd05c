package datagen

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Writer mutates a Redis database the way a live service would, with every
// kind of change cutover must follow: writes to every type, deletes,
// expiries (short ones that really expire during a test, and long ones),
// PERSIST, RENAME, COPY, MOVE to another database and UNLINK.
type Writer struct {
	// Keys is how many keys of each type the writer works on.
	Keys int
	// Seed makes the sequence of operations reproducible.
	Seed uint64
	// Prefix starts every key it writes.
	Prefix string
	// Rate is operations per second; 0 means as fast as Redis answers.
	Rate int
	// MoveDB is the database keys are MOVEd to; default 15.
	MoveDB int

	ops, errs atomic.Int64
}

// Ops is how many operations ran.
func (w *Writer) Ops() int64 { return w.ops.Load() }

// Run writes until ctx ends, then returns. Errors from individual commands
// (a RENAME of a key that just expired, say) are part of a live service's
// life and only counted.
func (w *Writer) Run(ctx context.Context, cl goredis.UniversalClient) {
	rng := rand.New(rand.NewPCG(w.Seed, w.Seed+1))
	if w.MoveDB == 0 {
		w.MoveDB = 15
	}
	var tick <-chan time.Time
	if w.Rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(min(w.Rate, 1000)))
		defer t.Stop()
		tick = t.C
	}
	perTick := max(1, w.Rate/1000)
	for ctx.Err() == nil {
		if tick != nil {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
		}
		pipe := cl.Pipeline()
		for range perTick {
			w.op(ctx, pipe, rng)
		}
		cmds, _ := pipe.Exec(ctx)
		for _, c := range cmds {
			w.ops.Add(1)
			if c.Err() != nil && !errors.Is(c.Err(), goredis.Nil) {
				w.errs.Add(1)
			}
		}
	}
}

func (w *Writer) key(rng *rand.Rand, typ string) string {
	return w.Prefix + typ + ":" + strconv.Itoa(rng.IntN(w.Keys))
}

func (w *Writer) op(ctx context.Context, p goredis.Pipeliner, rng *rand.Rand) {
	types := []string{"s", "h", "l", "t", "z"}
	typ := types[rng.IntN(len(types))]
	k := w.key(rng, typ)
	v := strconv.Itoa(rng.IntN(1000))
	switch r := rng.IntN(100); {
	case r < 50: // a write of the key's type
		switch typ {
		case "s":
			if rng.IntN(4) == 0 {
				p.Append(ctx, k, v)
			} else {
				p.Set(ctx, k, v, 0)
			}
		case "h":
			if rng.IntN(3) == 0 {
				p.HDel(ctx, k, "f"+strconv.Itoa(rng.IntN(5)))
			} else {
				p.HSet(ctx, k, "f"+strconv.Itoa(rng.IntN(5)), v)
			}
		case "l":
			if rng.IntN(3) == 0 {
				p.LPop(ctx, k)
			} else {
				p.RPush(ctx, k, v)
			}
		case "t":
			if rng.IntN(3) == 0 {
				p.SRem(ctx, k, "m"+strconv.Itoa(rng.IntN(5)))
			} else {
				p.SAdd(ctx, k, "m"+strconv.Itoa(rng.IntN(5)))
			}
		case "z":
			if rng.IntN(3) == 0 {
				p.ZRem(ctx, k, "m"+strconv.Itoa(rng.IntN(5)))
			} else {
				p.ZAdd(ctx, k, goredis.Z{Member: "m" + strconv.Itoa(rng.IntN(5)), Score: float64(rng.IntN(100)) / 4})
			}
		}
	case r < 60:
		p.Del(ctx, k)
	case r < 63:
		p.Unlink(ctx, k)
	case r < 70: // a short TTL: the key expires while the test runs
		p.PExpire(ctx, k, time.Duration(200+rng.IntN(2000))*time.Millisecond)
	case r < 75:
		p.Expire(ctx, k, time.Duration(1+rng.IntN(3))*time.Hour)
	case r < 79:
		p.Persist(ctx, k)
	case r < 88:
		p.Rename(ctx, k, w.key(rng, typ))
	case r < 93:
		p.Copy(ctx, k, w.key(rng, typ), 0, true)
	case r < 96:
		p.Move(ctx, k, w.MoveDB)
	default:
		p.Set(ctx, w.Prefix+"s:"+strconv.Itoa(rng.IntN(w.Keys)), strings.Repeat(v, 1+rng.IntN(50)), time.Duration(1+rng.IntN(5))*time.Hour)
	}
}
