package chaos

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/test/stack"
)

// TestHoldProxyCountsLateWrites: writes sent while the proxy holds reach
// the target only at the release, and the proxy reads the target's
// answer to each: "1" (written) or "0" (refused).
func TestHoldProxyCountsLateWrites(t *testing.T) {
	r := stack.NewRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := StartHoldProxy(r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cl := goredis.NewClient(&goredis.Options{Addr: p.Addr})
	defer cl.Close()
	// Writes key 1 unless it holds ARGV[1] already, and answers as the
	// apply script does, one answer per event: "1" if it wrote.
	script := goredis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return {'0'} end redis.call('SET', KEYS[1], ARGV[1]) return {'1'}`)
	if err := script.Load(ctx, cl).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.Client.Set(ctx, "k0", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	p.Hold()
	done := make(chan error, 1)
	go func() {
		pipe := cl.Pipeline()
		for i := range 50 {
			key := "k" + string(rune('0'+i%10))
			script.EvalSha(ctx, pipe, []string{key}, "v")
		}
		_, err := pipe.Exec(ctx)
		done <- err
	}()
	for p.Held() < 50 {
		select {
		case err := <-done:
			t.Fatalf("the pipeline completed while held: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if n, _ := r.Client.Exists(ctx, "k1").Result(); n != 0 {
		t.Fatal("a held write reached the target")
	}
	late, err := p.Release(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// k0..k9 written once each: k0 held v already, so 9 written, 41 refused.
	if late.Held != 50 || late.Applied != 9 || late.Refused != 41 || late.Other != 0 {
		t.Fatalf("want 50 held, 9 applied, 41 refused: %s", late)
	}

	// The worker carries on on the same connection, and is held again
	// later: the second release counts its own writes only. (The chaos
	// scenario freezes a worker twice; the answers to everything it wrote
	// in between were once counted as late writes applied.)
	for i := range 100 {
		if err := script.EvalSha(ctx, cl, []string{"n" + string(rune('0'+i%10))}, "v").Err(); err != nil {
			t.Fatal(err)
		}
	}
	p.Hold()
	go func() {
		pipe := cl.Pipeline()
		for range 5 {
			script.EvalSha(ctx, pipe, []string{"k0"}, "v")
		}
		_, err := pipe.Exec(ctx)
		done <- err
	}()
	for p.Held() < 5 {
		time.Sleep(10 * time.Millisecond)
	}
	if late, err = p.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if late.Held != 5 || late.Applied != 0 || late.Refused != 5 || late.Other != 0 {
		t.Fatalf("second release: want 5 held, 5 refused: %s", late)
	}
}
