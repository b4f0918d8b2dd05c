package redis

import (
	"context"
	"errors"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
)

// Sampler walks one server's database with SCAN and reads a sample of its
// keys exactly as the snapshot reads them, publishing nothing: what
// `cutover plan` measures. Unlike Scanner it hands back the read's
// counts, so a big key that would travel in pieces is told apart from one
// over the limits, and it reads each sampled key's MEMORY USAGE.
type Sampler struct {
	sc *Scanner // walks the database and chooses the sample
}

// Sample is one page of a Sampler's walk.
type Sample struct {
	// Batch and Counts are what Reader.Read made of the sampled keys.
	Batch  pipeline.Batch
	Counts ReadCounts
	// Memory is each sampled key's MEMORY USAGE (bytes, estimated by
	// Redis from a few elements), absent for a key gone meanwhile.
	Memory map[string]int64
}

// NewSampler walks cl's database, keeping keys that pass filter and, when
// 0 < fraction < 1, about that fraction of them (chosen by a salted hash
// of the key, before any value is read: SCAN walks every key, but only
// the sampled ones are read).
func NewSampler(cl *goredis.Client, conn redisconn.Conn, filter pipeline.KeyFilter, scanCount int, fraction float64, opts ReaderOptions) *Sampler {
	s := &Sampler{sc: NewScanner(cl, conn, filter, scanCount, opts)}
	if fraction > 0 && fraction < 1 {
		s.sc.sample = sampleKeys(fraction)
	}
	return s
}

// Prepare loads the read script.
func (s *Sampler) Prepare(ctx context.Context) error { return s.sc.Prepare(ctx) }

// Next reads the next page; done is true once the walk is complete.
func (s *Sampler) Next(ctx context.Context) (Sample, bool, error) {
	var out Sample
	sc := s.sc
	keys, next, more, err := sc.nextKeys(ctx)
	if !more || err != nil {
		return out, !more, err
	}
	if out.Batch, out.Counts, err = sc.reader.Read(ctx, keys, pipeline.OriginSnapshot, nil); err != nil {
		return out, false, err
	}
	if out.Memory, err = s.memory(ctx, keys); err != nil {
		return out, false, err
	}
	sc.cursor = next
	return out, next == 0, nil
}

// memory reads MEMORY USAGE of keys in one pipeline. SAMPLES 5 (Redis'
// default) keeps it cheap on a big collection: the size is extrapolated
// from a few elements.
func (s *Sampler) memory(ctx context.Context, keys []string) (map[string]int64, error) {
	out := make(map[string]int64, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	cmds := make([]*goredis.IntCmd, len(keys))
	err := retryRead(ctx, s.sc.log, "memory usage", func() error {
		pipe := s.sc.cl.Pipeline()
		for i, k := range keys {
			cmds[i] = pipe.MemoryUsage(ctx, k, 5)
		}
		_, _ = pipe.Exec(ctx) // each command's error is looked at below
		for _, c := range cmds {
			if err := c.Err(); err != nil && !errors.Is(err, goredis.Nil) && !isKeyForbidden(err) && !isElsewhere(err) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, redisconn.Explain(s.sc.conn, err)
	}
	for i, k := range keys {
		if n, err := cmds[i].Result(); err == nil {
			out[k] = n
		}
	}
	return out, nil
}
