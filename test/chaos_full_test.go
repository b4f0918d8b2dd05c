package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
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

// More chaos scenarios: see chaos_test.go. Each runs short in make test
// and full in make chaos (CUTOVER_CHAOS=full).

// TestChaosReplayFromZero replays the whole topic on a converged target
// whose group committed everything: every event is older than (or the
// same as) what the target holds, so the replay must apply none and skip
// every one, while the monitor watches the target. (An in-order replay
// without a version check would end at each key's last value too: only
// the counts and the monitor tell the two apart.) The TTLs are long, so
// that no key expires — and no event is published — once the writer
// stops.
func TestChaosReplayFromZero(t *testing.T) {
	t.Parallel()
	runChaos(t, "replay-from-zero", chaosCase{
		writer: &chaos.Writer{Keys: size(10_000, 100_000), Seed: 10, Rate: 3000, TTLShare: 0.2, MinTTL: time.Hour, MaxTTL: 2 * time.Hour,
			HotKeys: 50, HotShare: 0.2},
		writeFor: size(8*time.Second, 60*time.Second),
		converged: func(ctx context.Context, e *chaosEnv) {
			adm := e.kafka()
			e.waitFor(2*time.Minute, "the group committed every event of the topic", func() (bool, error) {
				committed, end, err := e.offsets(ctx, adm)
				for p, o := range end {
					if committed[p] != o {
						return false, err
					}
				}
				return len(end) > 0, err
			})
		},
		stopped: func(ctx context.Context, e *chaosEnv) {
			r := e.replay(ctx)
			if r.lag != 0 || r.applied != 0 || r.swept != 0 || r.skipped == 0 || r.skipped != r.total {
				e.t.Errorf("a replay of a fully committed topic on a converged target: %s; want 0 applied, 0 swept, all skipped as older", r)
			}
		},
	})
}

// replayed is what a replay reported.
type replayed struct {
	total, applied, skipped, swept, lag int64
	out                                 string
}

func (r replayed) String() string {
	return strings.Join([]string{
		"events replayed " + group(r.total), "applied " + group(r.applied), "skipped as older " + group(r.skipped),
		"swept " + group(r.swept), "uncommitted before it " + group(r.lag)}, ", ") + "\n" + r.out
}

// replay applies the whole topic again and reads its table and summary:
// the events it replayed, applied, skipped as older and swept, and the
// group's lag before it (events no worker committed).
func (e *chaosEnv) replay(ctx context.Context) replayed {
	res := stack.Run(ctx, e.t, append([]string{"replay", "--to-beginning"}, e.p.args...)...)
	if res.Code != 0 {
		e.t.Fatalf("replay exited %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	e.faults++
	r := replayed{out: res.Stdout}
	for _, m := range replayRow.FindAllStringSubmatch(res.Stdout, -1) {
		end := numberOfRow(m[4])
		r.total += numberOfRow(m[5])
		if m[2] == "-" {
			r.lag += end - numberOfRow(m[3])
		} else {
			r.lag += end - numberOfRow(m[2])
		}
	}
	r.applied = summaryCount(e.t, res.Stdout, "events applied")
	r.skipped = summaryCount(e.t, res.Stdout, "skipped as older")
	if m := sweptRe.FindStringSubmatch(res.Stdout); m != nil {
		r.swept = numberOfRow(m[1])
	}
	e.t.Logf("replay: %d events, %d applied, %d skipped as older, %d swept; %d uncommitted before it", r.total, r.applied, r.skipped, r.swept, r.lag)
	if r.total == 0 {
		e.t.Fatalf("the replay's table lists no event:\n%s", res.Stdout)
	}
	return r
}

// TestChaosAmbiguousSuccess: a fifth of the writes to DynamoDB reach the
// table but their answer is lost; the sink retries them, and the
// conditional write makes the retry harmless (the table's stream shows
// no write going backwards). Then the whole topic is replayed: every
// event is older than (or the same as) what the table holds, so the
// replay applies none but those no worker had committed. The writer is
// fast on a few hot keys, so that the topic holds more events than one
// batch of the replay takes: a sink keeps only a key's newest event of a
// batch, and only a key's events in different batches put its version
// check to work.
//
// The DynamoDB scenarios are small: a DynamoDB Local table with a stream
// (the checker's) takes about 45 writes a second, however many are sent
// at once.
func TestChaosAmbiguousSuccess(t *testing.T) {
	t.Parallel()
	runChaos(t, "ambiguous-success", chaosCase{
		// TTLs outlive the scenario: DynamoDB Local purges an expired item
		// within seconds, and a key expiring after replicate stopped
		// (so no delete of it was captured) and purged before the replay
		// has its last upsert, now past its expiry, written again by the
		// replay as a tombstone — an applied event this check would count
		// (a fresh-clone make test saw it once).
		writer: &chaos.Writer{Keys: size(500, 3000), Seed: 7, Rate: 400, TTLShare: 0.1, MinTTL: 30 * time.Minute, MaxTTL: time.Hour,
			HotKeys: 10, HotShare: 0.5},
		dynamodb: true,
		writeFor: size(6*time.Second, 60*time.Second),
		inject: func(ctx, writing context.Context, e *chaosEnv) int {
			e.waitWrites()
			e.proxy.Set(faultproxy.Faults{DropResponse: 0.2})
			want := int64(size(10, 100))
			e.waitFor(2*time.Minute, fmt.Sprintf("%d answers dropped", want), func() (bool, error) { return e.proxy.Stats().Dropped >= want, nil })
			e.proxy.Set(faultproxy.Faults{})
			dropped := int(e.proxy.Stats().Dropped)
			return dropped
		},
		stopped: func(ctx context.Context, e *chaosEnv) {
			r := e.replay(ctx)
			if r.applied > r.lag || r.skipped == 0 {
				e.t.Errorf("a replay on a converged table: %s; want at most the uncommitted events applied, the rest skipped as older", r)
			}
		},
	})
}

// TestChaosSourceSIGKILL kills replicate --no-sink during its snapshot of
// the Redis source, each time once it saved a new cursor; each restart
// must resume the snapshot from that cursor ("resuming snapshot"), not
// start over.
func TestChaosSourceSIGKILL(t *testing.T) {
	t.Parallel()
	kills := size(2, 10)
	resumed := 0
	runChaos(t, "source-sigkill", chaosCase{
		writer:   &chaos.Writer{Keys: size(20_000, 200_000), Seed: 2, Rate: 1000, TTLShare: 0.1},
		sinks:    1,
		extra:    []string{"--keys-per-second", size("2000", "8000")},
		writeFor: size(15*time.Second, 40*time.Second),
		inject: func(ctx, writing context.Context, e *chaosEnv) int {
			started := time.Now()
			for i := range kills {
				var saved bool
				e.waitFor(time.Minute, "the snapshot saved a cursor, or finished", func() (bool, error) {
					var done bool
					saved, done = snapshotState(e.p.ckDir, started)
					return saved || done || e.source.Exited(), nil
				})
				if !saved {
					e.t.Logf("the snapshot finished after %d kills", i)
					if i == 0 {
						e.t.Errorf("the snapshot finished before it could be killed once")
					}
					return i
				}
				e.source.Kill()
				started = time.Now()
				e.startSource()
				var errOut string
				e.waitFor(time.Minute, "the restarted source says where its snapshot starts", func() (bool, error) {
					_, errOut = e.source.Output()
					return strings.Contains(errOut, "resuming snapshot") || strings.Contains(errOut, "starting a new one") ||
						strings.Contains(errOut, "starting over"), nil
				})
				if !strings.Contains(errOut, "resuming snapshot") {
					e.t.Errorf("restart %d did not resume the snapshot from its cursor:\n%s", i+1, stack.Tail(errOut, 2000))
				} else {
					resumed++
				}
			}
			return kills
		},
		stopped: func(ctx context.Context, e *chaosEnv) {
			e.t.Logf("%d restarts resumed the snapshot from its cursor", resumed)
		},
	})
}

// snapshotState reads the Redis snapshot's checkpoint: saved is true for
// an unfinished position written after since (by the process started
// then), done for a finished snapshot.
func snapshotState(dir string, since time.Time) (saved, done bool) {
	since = since.Add(-time.Second) // checkpoint times have a coarse clock
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, "snapshot.ckpt") {
			return nil
		}
		var pos struct {
			Cursor uint64 `json:"cursor"`
			Done   bool   `json:"done"`
		}
		raw, err := os.ReadFile(path)
		info, ierr := d.Info()
		if err != nil || ierr != nil || json.Unmarshal(raw, &pos) != nil {
			return nil
		}
		saved = saved || pos.Cursor != 0 && !pos.Done && info.ModTime().After(since)
		done = done || pos.Done
		return nil
	})
	return saved, done
}

// TestChaosHotKeys: one key in a hundred takes half of the writes — each
// updated, deleted and created again many times a second — while the
// snapshot runs and after it.
func TestChaosHotKeys(t *testing.T) {
	t.Parallel()
	keys := size(10_000, 100_000)
	runChaos(t, "hot-keys", chaosCase{
		writer: &chaos.Writer{Keys: keys, Seed: 3, Rate: size(5000, 10_000), HotKeys: keys / 100, HotShare: 0.5,
			Deletes: 0.2, TTLShare: 0.05},
		// A snapshot paced to outlast the first writes: snapshot reads and
		// live events of the same hot keys race.
		extra:    []string{"--keys-per-second", size("1000", "5000")},
		writeFor: size(10*time.Second, 60*time.Second),
	})
}

// TestChaosThrottlingStorm: for a while DynamoDB throttles 30% of the
// writes and takes no more than 20 a second, as a provisioned table
// would; then it recovers. (The sink writes with PutItem, one item a
// call: a BatchWriteItem fault would hit nothing.) The sink slows down and retries every throttled write (it
// counts exactly as many as the proxy throttled); nothing is lost.
func TestChaosThrottlingStorm(t *testing.T) {
	t.Parallel()
	storm := size(6*time.Second, 60*time.Second)
	var throttled int64
	runChaos(t, "throttling-storm", chaosCase{
		writer:   &chaos.Writer{Keys: size(500, 3000), Seed: 5, Rate: size(60, 100), TTLShare: 0.1},
		dynamodb: true,
		writeFor: storm + 5*time.Second,
		inject: func(ctx, writing context.Context, e *chaosEnv) int {
			e.waitWrites()
			e.proxy.Set(faultproxy.Faults{Throttle: 0.3, Capacity: 20})
			sources.Sleep(context.Background(), storm) // the storm, however long the writer still writes
			e.proxy.Set(faultproxy.Faults{})
			throttled = e.proxy.Stats().Throttled
			return int(throttled)
		},
		stopped: func(ctx context.Context, e *chaosEnv) {
			out, _ := e.source.Output()
			m := throttlesRe.FindStringSubmatch(out)
			if m == nil {
				e.t.Fatalf("the summary has no throttle count:\n%s", out)
			}
			retried := numberOfRow(m[1])
			e.t.Logf("the proxy throttled %d writes; the sink retried %d", throttled, retried)
			if throttled == 0 || retried != throttled {
				e.t.Errorf("the proxy throttled %d writes, the sink counted %d throttled and retried", throttled, retried)
			}
		},
	})
}

var throttlesRe = regexp.MustCompile(`([0-9,]+) throttled and retried`)

// TestChaosTTLFidelity: every key has a TTL of 1–120 s, the writer
// changes TTLs (EXPIRE, PERSIST) as well as values, and the topic is
// replayed at the end: no key lives forever, none that expired comes
// back, and the replay applies nothing but what no worker had committed.
func TestChaosTTLFidelity(t *testing.T) {
	t.Parallel()
	runChaos(t, "ttl-fidelity", chaosCase{
		writer: &chaos.Writer{Keys: size(5000, 100_000), Seed: 6, Rate: size(2000, 5000), FillTTL: true, TTLShare: 0.7,
			MinTTL: time.Second, MaxTTL: size(30*time.Second, 120*time.Second)},
		writeFor: size(8*time.Second, 60*time.Second),
		stopped: func(ctx context.Context, e *chaosEnv) {
			// Keys keep expiring in the source after the writer stopped:
			// each is an event a worker may not have committed when it
			// stopped.
			r := e.replay(ctx)
			if r.applied > r.lag || r.skipped == 0 || r.lag == 0 && r.swept != 0 {
				e.t.Errorf("a replay on a converged target: %s; want at most the uncommitted events applied, the rest skipped as older", r)
			}
		},
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
		writer: &chaos.Writer{Keys: size(5000, 50_000), Seed: 8, Rate: 2000, TTLShare: 0.1},
		sinks:  1,
		setup: func(e *chaosEnv) {
			kafka = stack.NewKafka(e.t)
			e.p.args = withFlags(e.p.args, "--kafka-brokers", kafka.Addr)
		},
		// A round is 5 s of writes, 5 s of outage and the broker's restart,
		// which takes over 10 s on a busy machine: at 15 s a round, the
		// last one did not fit in the writer's time.
		writeFor: time.Duration(restarts)*30*time.Second + 5*time.Second,
		inject: func(ctx, writing context.Context, e *chaosEnv) int {
			for i := range restarts {
				if !sources.Sleep(writing, 5*time.Second) {
					return i
				}
				kafka.Kill()
				time.Sleep(5 * time.Second) // the outage
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
	rounds := 1
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
	if chaosFull {
		rounds = 3
	}
	hold := size(2*time.Second, 3*time.Second)
	runChaos(t, "network-faults", chaosCase{
		writer: &chaos.Writer{Keys: size(3000, 20_000), Seed: 12, Rate: 1000, TTLShare: 0.1},
		setup: func(e *chaosEnv) {
			e.p.args = withFlags(e.p.args, "--redis-addr", proxy("source", e.src.Addr), "--target-redis-addr", proxy("target", e.dst.Addr))
		},
		writeFor: time.Duration(rounds*len(toxics)*2)*(hold+2*time.Second) + 5*time.Second,
		inject: func(ctx, writing context.Context, e *chaosEnv) int {
			faults := 0
			for range rounds {
				for _, side := range []string{"source", "target"} {
					for _, tx := range toxics {
						if !sources.Sleep(writing, 2*time.Second) {
							return faults
						}
						p := proxies[side]
						if _, err := p.Toxics.AddToxicJson(strings.NewReader(tx.json)); err != nil {
							e.t.Fatalf("toxic %s: %v", tx.name, err)
						}
						sources.Sleep(context.Background(), hold) // the fault's duration
						must(e.t, p.Toxics.RemoveToxic(context.Background(), tx.name))
						faults++
					}
				}
			}
			return faults
		},
	})
}
