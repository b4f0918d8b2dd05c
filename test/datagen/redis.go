package datagen

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Spec describes a Redis dataset.
type Spec struct {
	// Keys is how many keys to write.
	Keys int
	// Seed makes the dataset reproducible.
	Seed uint64
	// Prefix starts every text key.
	Prefix string
	// TTLFraction of keys get an expiry between one and two hours ahead.
	TTLFraction float64
	// BinaryFraction of keys have a key and a value that are not text
	// (NUL, 0xff, invalid UTF-8).
	BinaryFraction float64
	// MaxElements bounds the size of each hash, list, set and zset; default 20.
	MaxElements int
}

// Summary counts what Seed wrote, by type.
type Summary struct {
	ByType  map[string]int
	WithTTL int
	Binary  int
}

// Seed writes the dataset with pipelined commands, 500 keys at a time.
func Seed(ctx context.Context, cl goredis.UniversalClient, spec Spec) (Summary, error) {
	if spec.MaxElements <= 0 {
		spec.MaxElements = 20
	}
	rng := rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x9e3779b97f4a7c15))
	sum := Summary{ByType: map[string]int{}}
	const batch = 500
	for start := 0; start < spec.Keys; start += batch {
		pipe := cl.Pipeline()
		for i := start; i < min(start+batch, spec.Keys); i++ {
			binary := rng.Float64() < spec.BinaryFraction
			typ := pickType(rng)
			key := spec.Prefix + typ + ":" + strconv.Itoa(i)
			if binary {
				key = spec.Prefix + "bin:" + string(randBinary(rng, 4+rng.IntN(12))) + strconv.Itoa(i)
				sum.Binary++
			}
			n := 1 + rng.IntN(spec.MaxElements)
			switch typ {
			case "string":
				v := []byte("value-" + strconv.Itoa(rng.IntN(1_000_000)))
				if binary {
					v = randBinary(rng, 1+rng.IntN(64))
				}
				pipe.Set(ctx, key, v, 0)
			case "hash":
				args := make([]any, 0, 2*n)
				for j := range n {
					name := "field" + strconv.Itoa(j)
					if binary && j == 0 {
						name = string(randBinary(rng, 3)) // not UTF-8: exercises the pair mapping
					}
					args = append(args, name, "v"+strconv.Itoa(rng.IntN(1000)))
				}
				pipe.HSet(ctx, key, args...)
			case "list":
				args := make([]any, n)
				for j := range args {
					args[j] = "item" + strconv.Itoa(rng.IntN(10)) // repeats are part of a list
				}
				pipe.RPush(ctx, key, args...)
			case "set":
				args := make([]any, n)
				for j := range args {
					args[j] = "m" + strconv.Itoa(j)
				}
				if binary {
					args[0] = randBinary(rng, 5)
				}
				pipe.SAdd(ctx, key, args...)
			case "zset":
				zs := make([]goredis.Z, n)
				for j := range zs {
					zs[j] = goredis.Z{Member: "m" + strconv.Itoa(j), Score: math.Round(rng.NormFloat64()*1e6) / 1000}
				}
				if n > 2 {
					zs[0].Score = math.Inf(-1)
					zs[1].Score = math.Inf(1)
				}
				pipe.ZAdd(ctx, key, zs...)
			}
			sum.ByType[typ]++
			if rng.Float64() < spec.TTLFraction {
				pipe.Expire(ctx, key, time.Hour+time.Duration(rng.IntN(3600))*time.Second)
				sum.WithTTL++
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return sum, fmt.Errorf("seed redis: %w", err)
		}
	}
	return sum, nil
}

func pickType(rng *rand.Rand) string {
	switch r := rng.IntN(100); {
	case r < 40:
		return "string"
	case r < 55:
		return "hash"
	case r < 70:
		return "list"
	case r < 85:
		return "set"
	default:
		return "zset"
	}
}

// randBinary returns bytes that are never valid UTF-8 and include NUL.
func randBinary(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	b[0] = 0xff // never valid UTF-8
	if n > 1 {
		b[1] = 0x00
	}
	return b
}
