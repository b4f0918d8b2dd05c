package redis

import (
	"context"
	"testing"
	"time"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/sources/sourcetest"
	"github.com/cutover/cutover/test/stack"
)

// TestSourceContract runs the source contract against a private
// redis-server: snapshots through SCAN, live capture through keyspace
// notifications, and the heal of a restart.
func TestSourceContract(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) *sourcetest.Subject {
		srv := stack.NewRedis(t)
		c := srv.Client
		newSource := func(mode Mode, pub pipeline.Publisher, ck checkpoint.Store) pipeline.Source {
			// ScanCount 10: the snapshot publishes a page of about ten keys
			// at a time, so the contract can stop it halfway.
			return NewSource(redisconn.Conn{Addr: srv.Addr}, c, nil, SourceOptions{Name: "contract", Mode: mode, ScanCount: 10,
				ClockEvery: 50 * time.Millisecond}, pub, ck)
		}
		return &sourcetest.Subject{
			Put: func(t *testing.T, key, value string) {
				must(t, c.Set(context.Background(), key, value, 0).Err())
			},
			Delete: func(t *testing.T, key string) {
				must(t, c.Del(context.Background(), key).Err())
			},
			Backfill: func(_ *testing.T, pub pipeline.Publisher, ck checkpoint.Store) pipeline.Source {
				return newSource(Mode{SnapshotOnly: true}, pub, ck)
			},
			Replicate: func(_ *testing.T, pub pipeline.Publisher, ck checkpoint.Store) pipeline.Source {
				return newSource(Mode{}, pub, ck)
			},
			Key:   func(e pipeline.Event) string { return string(e.Key) },
			Value: func(e pipeline.Event) string { return string(e.Value.String) },
		}
	})
}
