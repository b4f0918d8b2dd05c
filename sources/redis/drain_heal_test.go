package redis

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/pipelinetest"
	"github.com/cutover/cutover/test/stack"
)

// holdHealRequest is a log handler that holds the reader's heal request
// (RequestHeal logs before it counts the request) until release closes.
type holdHealRequest struct {
	slog.Handler
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *holdHealRequest) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "changes may have been missed") {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "reason" && strings.HasPrefix(a.Value.String(), "reading changed keys failed") {
				h.once.Do(func() { close(h.entered) })
				<-h.release
			}
			return true
		})
	}
	return h.Handler.Handle(ctx, r)
}

// A key changed before a drain whose read fails is answered by a heal
// (readLoop asks for one). readLoop asked for it only after releasing the
// in-flight lock, so drained could take the lock (barrier), read the heal
// count — without this request — and return: the drain's barrier went out
// before the key's change was re-read, and `cutover drain` could exit 0
// without it. The heal request must be counted before the read leaves the
// in-flight lock.
func TestDrainWaitsForTheHealOfAFailedRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := stack.NewRedis(t)
	hold := &holdHealRequest{Handler: slog.Default().Handler(), entered: make(chan struct{}), release: make(chan struct{})}
	released := sync.OnceFunc(func() { close(hold.release) })
	defer released()
	pub := &pipelinetest.Publisher{}
	l := NewLive(src.Client, redisconn.Conn{Addr: src.Addr}, LiveOptions{Name: "t", Readers: 1, Epoch: pipeline.NewEpoch(0),
		Logger: slog.New(hold)}, pub)
	must(t, l.Subscribe(ctx))
	l.SnapshotDone()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = l.Run(runCtx) }()

	// Reads fail (not a key refusal: the read script may not run) while
	// the key changes; its read fails and asks for a heal.
	must(t, src.Client.Do(ctx, "ACL", "SETUSER", "default", "-evalsha").Err())
	must(t, src.Client.Set(ctx, "k", "before-drain", 0).Err())
	select {
	case <-hold.entered:
	case <-ctx.Done():
		t.Fatal("the read of k never failed")
	}

	drained := make(chan error, 1)
	go func() { drained <- l.drained(ctx) }()
	var healsAtReturn int64
	select {
	case err := <-drained:
		must(t, err)
		healsAtReturn = l.heals.Load()
		released()
	case <-time.After(3 * time.Second):
		// drained is (rightly) held back by the read in flight: let the
		// heal request through and the heal run.
		released()
		must(t, src.Client.Do(ctx, "ACL", "SETUSER", "default", "+evalsha").Err())
		must(t, <-drained)
		healsAtReturn = l.heals.Load()
	}
	if healsAtReturn == 0 {
		t.Fatal("drained returned before any heal re-read k, whose read failed before the drain: its change is not published")
	}
}

// FLUSHDB, FLUSHALL and SWAPDB send no notification: watchFlushes sees
// them in INFO commandstats, once per CheckEvery, and asks for a heal.
// A drain's token arrives in milliseconds, so a FLUSHDB acknowledged
// before the drain started was not yet a heal request when drained read
// the count: the barrier went out, and `cutover drain` exited 0 while the
// target still held every flushed key.
func TestDrainCoversAFlushBeforeIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := stack.NewRedis(t)
	pub := &pipelinetest.Publisher{}
	l := NewLive(src.Client, redisconn.Conn{Addr: src.Addr}, LiveOptions{Name: "t", Epoch: pipeline.NewEpoch(0),
		CheckEvery: 5 * time.Second}, pub)
	must(t, l.Subscribe(ctx))
	l.SnapshotDone()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = l.Run(runCtx) }()
	// Subscribe took the flush counters' baseline: nothing to wait for.
	must(t, src.Client.Set(ctx, "k", "v", 0).Err())
	must(t, src.Client.FlushDB(ctx).Err()) // acknowledged: k is gone
	must(t, l.drained(ctx))
	if l.heals.Load() == 0 {
		t.Fatal("drained returned before a heal answered the FLUSHDB made before it: the target still holds k")
	}
}
