//go:build chaos

package test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/cutover/cutover/sources"
	"github.com/cutover/cutover/test/chaos"
	"github.com/cutover/cutover/test/faultproxy"
	"github.com/cutover/cutover/test/stack"
)

// The scenarios only make chaos runs (go test -tags chaos); make test
// runs the three of chaos_test.go, short.

// TestChaosReplayFromZero replays the whole topic on a converged target:
// every event is older than (or the same as) what the target holds, so
// nothing changes.
func TestChaosReplayFromZero(t *testing.T) {
	t.Parallel()
	runChaos(t, "replay-from-zero", chaosCase{
		writer:   &chaos.Writer{Keys: size(10_000, 100_000), Seed: 10, Rate: 3000, TTLShare: 0.2, HotKeys: 50, HotShare: 0.2},
		writeFor: size(8*time.Second, 60*time.Second),
		afterwards: func(e *chaosEnv) {
			if applied := e.replay(); applied != 0 {
				e.t.Errorf("the replay applied %d events to a converged target, want 0", applied)
			}
		},
	})
}

// replay applies the whole topic again and returns how many events it
// applied (the rest were skipped as older).
func (e *chaosEnv) replay() int64 {
	res := stack.Run(testCtx(e.t, 5*time.Minute), e.t, append([]string{"replay", "--to-beginning"}, e.p.args...)...)
	if res.Code != 0 {
		e.t.Fatalf("replay exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	return summaryCount(e.t, res.Stdout, "events applied")
}

// TestChaosAmbiguousSuccess: a fifth of the writes to DynamoDB reach the
// table but their answer is lost; the sink retries them, and the
// conditional write makes the retry harmless.
func TestChaosAmbiguousSuccess(t *testing.T) {
	t.Parallel()
	runChaos(t, "ambiguous-success", chaosCase{
		writer:   &chaos.Writer{Keys: size(3000, 20_000), Seed: 7, Rate: size(300, 1000), TTLShare: 0.1},
		dynamodb: true,
		writeFor: size(10*time.Second, 60*time.Second),
		inject: func(ctx context.Context, e *chaosEnv) int {
			e.proxy.Set(faultproxy.Faults{DropResponse: 0.2})
			<-ctx.Done()
			e.proxy.Set(faultproxy.Faults{})
			return int(e.proxy.Stats().Dropped)
		},
	})
}

// TestChaosSourceSIGKILL kills the Redis source during its snapshot; each
// restart resumes the snapshot from its saved cursor, not from zero.
func TestChaosSourceSIGKILL(t *testing.T) {
	t.Parallel()
	kills := size(3, 10)
	runChaos(t, "source-sigkill", chaosCase{
		writer:   &chaos.Writer{Keys: size(30_000, 200_000), Seed: 2, Rate: 1000, TTLShare: 0.1},
		sinks:    1,
		extra:    []string{"--keys-per-second", "8000"},
		writeFor: time.Duration(kills)*2*time.Second + 8*time.Second,
		inject: func(ctx context.Context, e *chaosEnv) int {
			for i := range kills {
				deadline := time.Now().Add(5 * time.Second)
				for !snapshotCursorSaved(e.t, e.p.ckDir) && time.Now().Before(deadline) {
					time.Sleep(100 * time.Millisecond)
				}
				if !sources.Sleep(ctx, 500*time.Millisecond) {
					return i
				}
				_, errOut := e.source.Output()
				if i > 0 && !strings.Contains(errOut, "resuming snapshot") && !strings.Contains(errOut, "snapshot complete") {
					e.t.Errorf("restart %d did not resume the snapshot from its cursor:\n%s", i, stack.Tail(errOut, 2000))
				}
				e.source.Kill()
				e.startSource()
			}
			return kills
		},
	})
}

// TestChaosHotKeys: one key in a hundred takes half of the writes — each
// updated, deleted and created again many times a second — while the
// snapshot runs and after it.
func TestChaosHotKeys(t *testing.T) {
	t.Parallel()
	keys := size(20_000, 100_000)
	runChaos(t, "hot-keys", chaosCase{
		writer: &chaos.Writer{Keys: keys, Seed: 3, Rate: size(5000, 10_000), HotKeys: keys / 100, HotShare: 0.5,
			Deletes: 0.2, TTLShare: 0.05},
		extra:    []string{"--keys-per-second", size("4000", "5000")},
		writeFor: size(10*time.Second, 60*time.Second),
	})
}

// TestChaosThrottlingStorm: for a while DynamoDB throttles 30% of the
// writes and takes only half of the items of each BatchWriteItem; then it
// recovers. The sink slows down and retries; nothing is lost.
func TestChaosThrottlingStorm(t *testing.T) {
	t.Parallel()
	storm := size(10*time.Second, 60*time.Second)
	runChaos(t, "throttling-storm", chaosCase{
		writer:   &chaos.Writer{Keys: size(3000, 20_000), Seed: 5, Rate: size(300, 1000), TTLShare: 0.1},
		dynamodb: true,
		writeFor: storm + 10*time.Second,
		inject: func(ctx context.Context, e *chaosEnv) int {
			e.proxy.Set(faultproxy.Faults{Throttle: 0.3, Unprocessed: 0.5})
			sources.Sleep(ctx, storm)
			e.proxy.Set(faultproxy.Faults{})
			st := e.proxy.Stats()
			return int(st.Throttled + st.Partial)
		},
	})
}

// TestChaosTTLFidelity: every key has a TTL of 1–120 s, the writer
// changes TTLs (EXPIRE, PERSIST) as well as values, and the topic is
// replayed at the end: no key lives forever, none that expired comes back.
func TestChaosTTLFidelity(t *testing.T) {
	t.Parallel()
	runChaos(t, "ttl-fidelity", chaosCase{
		writer: &chaos.Writer{Keys: size(10_000, 100_000), Seed: 6, Rate: size(2000, 5000), FillTTL: true, TTLShare: 0.7,
			MinTTL: time.Second, MaxTTL: 120 * time.Second},
		writeFor:   size(10*time.Second, 60*time.Second),
		afterwards: func(e *chaosEnv) { e.replay() },
	})
}

// TestChaosKafkaRestart kills the Kafka broker (a private one) under load
// and starts it again a few seconds later, a few times. Producers and
// consumers wait and retry; what was acknowledged is still there.
func TestChaosKafkaRestart(t *testing.T) {
	t.Parallel()
	restarts := size(1, 3)
	var kafka *stack.Kafka
	runChaos(t, "kafka-restart", chaosCase{
		writer: &chaos.Writer{Keys: size(10_000, 50_000), Seed: 8, Rate: 2000, TTLShare: 0.1},
		sinks:  1,
		setup: func(e *chaosEnv) {
			kafka = stack.NewKafka(e.t)
			e.p.args = withFlags(e.p.args, "--kafka-brokers", kafka.Addr)
		},
		writeFor: time.Duration(restarts)*20*time.Second + 5*time.Second,
		inject: func(ctx context.Context, e *chaosEnv) int {
			for i := range restarts {
				if !sources.Sleep(ctx, 5*time.Second) {
					return i
				}
				kafka.Kill()
				time.Sleep(5 * time.Second)
				kafka.Restart(e.t)
			}
			return restarts
		},
	})
}

// TestChaosNetworkFaults puts Toxiproxy between cutover and both Redis
// servers and, in turn: adds 100±50 ms of latency, resets every
// connection, and stops all traffic without closing anything (a timeout
// window).
func TestChaosNetworkFaults(t *testing.T) {
	t.Parallel()
	rounds := size(1, 3)
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxies := map[string]*toxiproxy.Proxy{}
	proxy := func(name, upstream string) string {
		p := toxiproxy.NewProxy(server, name, "127.0.0.1:0", upstream)
		must(t, server.Collection.Add(p, true))
		t.Cleanup(p.Stop)
		proxies[name] = p
		return p.Listen
	}
	toxics := []struct{ name, json string }{
		{"latency", `{"name":"latency","type":"latency","stream":"downstream","attributes":{"latency":100,"jitter":50}}`},
		{"reset", `{"name":"reset","type":"reset_peer","stream":"downstream","attributes":{"timeout":0}}`},
		{"timeout", `{"name":"timeout","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`},
	}
	runChaos(t, "network-faults", chaosCase{
		writer: &chaos.Writer{Keys: size(5000, 20_000), Seed: 12, Rate: 1000, TTLShare: 0.1},
		setup: func(e *chaosEnv) {
			e.p.args = withFlags(e.p.args, "--redis-addr", proxy("source", e.src.Addr), "--target-redis-addr", proxy("target", e.dst.Addr))
		},
		writeFor: time.Duration(rounds*len(toxics)*2)*5*time.Second + 5*time.Second,
		inject: func(ctx context.Context, e *chaosEnv) int {
			faults := 0
			for range rounds {
				for _, side := range []string{"source", "target"} {
					for _, tx := range toxics {
						if !sources.Sleep(ctx, 2*time.Second) {
							return faults
						}
						p := proxies[side]
						if _, err := p.Toxics.AddToxicJson(strings.NewReader(tx.json)); err != nil {
							e.t.Fatalf("toxic %s: %v", tx.name, err)
						}
						sources.Sleep(context.Background(), 3*time.Second)
						must(e.t, p.Toxics.RemoveToxic(context.Background(), tx.name))
						faults++
					}
				}
			}
			return faults
		},
	})
}
