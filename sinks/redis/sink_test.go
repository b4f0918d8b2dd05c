package redis

import (
	"context"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/reconcile"
	"github.com/cutover/cutover/sinks/sinktest"
	redissrc "github.com/cutover/cutover/sources/redis"
	"github.com/cutover/cutover/test/stack"
)

// target reads back what the sink wrote with the source's own reader.
type target struct {
	*Sink
	reader *redissrc.Reader
}

func (t *target) Read(ctx context.Context, key []byte) (reconcile.Found, error) {
	b, _, err := t.reader.Read(ctx, []string{string(key)}, pipeline.OriginRepair, nil)
	if err != nil || len(b.Events) == 0 || b.Events[0].Op != pipeline.OpUpsert {
		return reconcile.Found{}, err
	}
	return reconcile.Found{Exists: true, Value: b.Events[0].Value, ExpireAt: b.Events[0].ExpireAt}, nil
}

func TestContract(t *testing.T) {
	sinktest.Run(t, sinktest.Caps{Chunks: true, TTLPrecision: 5 * time.Millisecond, EmptyKey: true}, func(t *testing.T) sinktest.Target {
		r := stack.NewRedis(t)
		s, err := New(r.Client, Options{Addr: r.Addr})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		rd := redissrc.NewReader(r.Client, redisconn.Conn{Addr: r.Addr}, redissrc.ReaderOptions{Name: "t"})
		if err := rd.Prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		return &target{Sink: s, reader: rd}
	})
}

func TestVersionBucketIsInTheDataKeysSlot(t *testing.T) {
	for _, key := range []string{"user:1", "{user1}:a", "a}b", "{}", "x{", "\x00\xff", "", "{a}{b}"} {
		for _, vk := range []string{bucketKey("cutover:v:", []byte(key), 1), bucketKey("cutover:v:", []byte(key), 64), legacyKey("cutover:v:", []byte(key))} {
			if pipeline.RedisSlot([]byte(vk)) != pipeline.RedisSlot([]byte(key)) {
				t.Errorf("version key %q of %q is in slot %d, the key in %d", vk, key, pipeline.RedisSlot([]byte(vk)), pipeline.RedisSlot([]byte(key)))
			}
		}
	}
}
