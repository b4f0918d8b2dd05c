package test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/cutover/cutover/sources"
	"github.com/cutover/cutover/test/chaos"
	"github.com/cutover/cutover/test/faultproxy"
	"github.com/cutover/cutover/test/stack"
)

// The chaos scenarios inject one kind of fault while a chaos.Writer
// changes the source (every value it writes is unique and carries a
// sequence number larger than any before it), and prove the guarantees:
//
//   - no regression, ever, measured at the target the whole run: a Redis
//     target is watched by a chaos.NotifyMonitor (keyevent notifications
//     and a read of every key that changed, kept running through the
//     scenario's replay step); a DynamoDB target's own stream (new
//     images, on from the table's creation) is read whole at the end
//     and checked record by record (chaos.CheckStream). A monitor that
//     failed, or read nothing, fails the scenario;
//   - once the writer stops and the pipeline catches up, the target
//     equals the source key by key — type, whole value, absolute expiry
//     within 2 s (chaos.CompareStates): nothing lost, nothing resurrected;
//   - `cutover reconcile` then exits 0, and every process exits 0 on
//     SIGTERM;
//   - the fault happened and had the effect the scenario is about (a
//     replay skipped everything as older, a frozen worker's late writes
//     were refused, a restarted worker continued from committed offsets,
//     gaps were detected and healed, …): a fault that cannot be observed
//     proves nothing.
//
// Each prints one line (chaos.Result). make test runs every scenario
// short (a few faults, small key counts); make chaos sets
// CUTOVER_CHAOS=full for the full sizes and writes every line to
// CUTOVER_CHAOS_REPORT. The scenarios are in this file and in
// chaos_full_test.go.

// chaosFull is true under make chaos.
var chaosFull = os.Getenv("CUTOVER_CHAOS") == "full"

// size picks the short or the full form of a number.
func size[T any](short, full T) T {
	if chaosFull {
		return full
	}
	return short
}

// chaosCase is one scenario.
type chaosCase struct {
	writer *chaos.Writer
	// dynamodb sends the events to a DynamoDB table (through a fault
	// proxy) instead of a Redis target.
	dynamodb bool
	// sinks > 0 runs the source alone (replicate --no-sink) and that many
	// sink workers; 0 runs one replicate process doing both.
	sinks int
	extra []string
	// setup runs before the cutover processes start (to point the
	// pipeline at a proxy, say).
	setup func(e *chaosEnv)
	// writeFor is how long the writer runs; inject runs meanwhile (writing
	// ends with the writer) and returns how many faults it injected.
	writeFor time.Duration
	inject   func(ctx, writing context.Context, e *chaosEnv) int
	// converged runs once the target equals the source, before the
	// processes stop (to wait until a heal finished, say).
	converged func(ctx context.Context, e *chaosEnv)
	// stopped runs once every process stopped with exit 0, with the
	// monitor still watching (a replay, say); the stores are compared
	// again after it.
	stopped func(ctx context.Context, e *chaosEnv)
}

// runChaos runs one scenario and checks its result.
func runChaos(t *testing.T, name string, c chaosCase) chaos.Result {
	t.Helper()
	begin := time.Now()
	ctx := testCtx(t, 15*time.Minute)
	e := &chaosEnv{t: t, src: stack.NewRedis(t), writer: c.writer, sinks: make([]*stack.Proc, c.sinks), sinkArgs: map[int][]string{}}
	if err := c.writer.Fill(ctx, e.src.Client); err != nil {
		t.Fatal(err)
	}
	var streams *dynamodbstreams.Client
	if c.dynamodb {
		stack.LoadDynamoDB(t, 1)
		e.db = dynamoClient(t)
		var err error
		if streams, err = chaos.StreamsClient(ctx, stack.DynamoDBEndpoint(t)); err != nil {
			t.Fatal(err)
		}
		proxy, err := faultproxy.Start("127.0.0.1:0", stack.DynamoDBEndpoint(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { proxy.Close() })
		e.proxy = proxy
		e.p = newPipeline(t, e.src, "--key-type", "S")
		// The table cutover would create, with a stream from its first
		// write on: every write the sink makes is a record to check.
		if err := chaos.CreateTargetTable(ctx, e.db, e.p.table, chaos.GenericLayout); err != nil {
			t.Fatal(err)
		}
		e.p.args = withFlags(e.p.args, "--dynamodb-endpoint", proxy.URL)
	} else {
		e.dst = stack.NewRedis(t)
		mon, err := chaos.StartNotifyMonitor(ctx, e.dst.Client, versionPrefix)
		if err != nil {
			t.Fatal(err)
		}
		e.mon = mon
		e.p = newRedisPipeline(t, e.src, e.dst)
	}
	e.p.args = append(e.p.args, c.extra...)
	if c.setup != nil {
		c.setup(e)
	}
	e.startSource()
	for i := range e.sinks {
		e.startSink(i)
	}
	t.Cleanup(func() {
		if t.Failed() {
			e.mu.Lock()
			defer e.mu.Unlock()
			for i, p := range append([]*stack.Proc{e.source}, e.sinks...) {
				out, errOut := p.Output()
				t.Logf("process %d (0 is the source) ends:\n%s\n%s", i, stack.Tail(errOut, 3000), stack.Tail(out, 1500))
			}
		}
	})

	// The writer and the faults, for writeFor from the moment the source
	// runs (its start takes seconds on a loaded machine): the writes must
	// meet a running pipeline, not only its first snapshot.
	e.waitStarted()
	wctx, stopWriting := context.WithTimeout(ctx, c.writeFor)
	defer stopWriting()
	var wg sync.WaitGroup
	wg.Go(func() { c.writer.Run(wctx, e.src.Client) })
	e.step("writing, with faults")
	faults := 0
	if c.inject != nil {
		faults = c.inject(ctx, wctx, e)
	}
	<-wctx.Done()
	wg.Wait()

	var res chaos.Result
	e.step("catching up")
	caught := time.Now()
	// First the sink applies what the topic holds, at the target's pace;
	// then the stores must agree within a bound that covers what the
	// source still had to publish.
	e.caughtUp(ctx, 2*time.Minute)
	d := e.converge(ctx, 3*time.Minute)
	res.AddDiff(d)
	t.Logf("%v after the writer stopped: %s", time.Since(caught).Round(100*time.Millisecond), d)
	// reconcile must find the stores equal, types and TTLs included:
	// exit 0. It runs while the pipeline is live: a key that expires in
	// the source becomes a delete in the target only while the source
	// runs.
	if e.proxy != nil {
		e.proxy.Set(faultproxy.Faults{})
	}
	rec := stack.Run(ctx, t, append([]string{"reconcile", "--output", "json", "--recheck-delay", "500ms"}, e.p.args...)...)
	var rep reconcileReport
	reconciled := int64(0) // differences reconcile found that the comparison missed
	switch {
	case rec.Code != 0 || json.Unmarshal([]byte(rec.Stdout), &rep) != nil:
		reconciled = 1
		res.Note("reconcile exited %d, want 0: %s %s", rec.Code, stack.Tail(rec.Stdout, 800), stack.Tail(rec.Stderr, 800))
	case rep.Compared == 0:
		res.Note("reconcile compared no key")
		t.Errorf("reconcile compared no key:\n%s", rec.Stdout)
	default:
		t.Logf("reconcile: exit 0, %d keys compared (%v)", rep.Compared, time.Since(caught).Round(100*time.Millisecond))
	}
	if d.OK() && c.converged != nil {
		c.converged(ctx, e)
	}
	e.step("stopping")
	e.stopAll()
	if d.OK() && !t.Failed() && c.stopped != nil {
		e.step("after the stop (a replay)")
		c.stopped(ctx, e)
		// The stores again: a key can expire in one store a moment
		// before the other, hence a short wait.
		d = e.converge(ctx, 10*time.Second)
		t.Logf("after the last step: %s", d)
		res = chaos.Result{Examples: res.Examples}
		res.AddDiff(d)
	}
	res.Differences += reconciled

	// What the monitor saw, the whole run through.
	if e.mon != nil {
		if err := e.mon.Sync(ctx); err != nil {
			res.Note("the regression monitor: %v", err)
		}
		if err := res.AddMonitor(e.mon.Stop()); err != nil {
			t.Error(err)
		}
	} else if err := res.AddStream(chaos.CheckStream(ctx, e.db, streams, e.p.table, chaos.GenericLayout)); err != nil {
		t.Error(err)
	}

	res.Scenario, res.Faults, res.Events, res.Keys, res.Took = name, faults+e.faults, c.writer.Ops(), c.writer.Keys, time.Since(begin)
	t.Log(res.String())
	if !res.OK() {
		_, errOut := e.source.Output()
		t.Errorf("%s broke a guarantee:\n  %s\nthe source's log ends:\n%s", name, strings.Join(res.Examples, "\n  "), stack.Tail(errOut, 4000))
	}
	writeChaosLine(t, res)
	return res
}

// writeChaosLine appends the result to CUTOVER_CHAOS_REPORT, when set.
// A scenario that failed any check — its fault not observed, say — is
// not reported as keeping every guarantee.
func writeChaosLine(t *testing.T, r chaos.Result) {
	path := os.Getenv("CUTOVER_CHAOS_REPORT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Errorf("chaos report: %v", err)
		return
	}
	defer f.Close()
	ok := "yes"
	if !r.OK() || t.Failed() {
		ok = "**no**"
	}
	fmt.Fprintf(f, "| %s | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n", r.Scenario, r.Faults, r.Events, r.Keys,
		r.Lost, r.Regressions, r.Resurrected, r.Differences, r.Took.Round(time.Second), ok)
}

// TestChaosSinkSIGKILL kills the sink worker at random moments during the
// snapshot and the live writes that follow it. Each restart continues from
// the group's committed offsets, not from the start of the topic: the
// last worker's events (applied plus skipped) are at most the topic's end
// minus what was committed before it started.
func TestChaosSinkSIGKILL(t *testing.T) {
	t.Parallel()
	kills := size(3, 20)
	var lastCommitted int64
	var adm *kadm.Client
	runChaos(t, "sink-sigkill", chaosCase{
		writer: &chaos.Writer{Keys: size(10_000, 100_000), Seed: 1, Rate: 2000, TTLShare: 0.1},
		sinks:  1,
		extra:  []string{"--keys-per-second", size("5000", "20000")},
		setup:  func(e *chaosEnv) { adm = e.kafka() },
		// About 2.5s between kills, and time to catch up after the last.
		writeFor: time.Duration(kills)*2500*time.Millisecond + 5*time.Second,
		inject: func(ctx, writing context.Context, e *chaosEnv) int {
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range kills {
				if !sources.Sleep(writing, time.Duration(1000+rng.IntN(3000))*time.Millisecond) {
					return i
				}
				e.sinks[0].Kill()
				committed, _, err := e.offsets(ctx, adm)
				if err != nil {
					e.t.Fatal(err)
				}
				lastCommitted = 0
				for _, o := range committed {
					lastCommitted += o
				}
				e.t.Logf("kill %d: %d offsets committed; the restarted worker continues from them", i+1, lastCommitted)
				e.startSink(0)
			}
			return kills
		},
		stopped: func(ctx context.Context, e *chaosEnv) {
			_, end, err := e.offsets(ctx, adm)
			if err != nil {
				e.t.Fatal(err)
			}
			var total int64
			for _, o := range end {
				total += o
			}
			out, _ := e.sinks[0].Output()
			handled := summaryCount(e.t, out, "events applied") + summaryCount(e.t, out, "skipped as older")
			e.t.Logf("the topic holds %d events; %d were committed before the last restart; the last worker handled %d", total, lastCommitted, handled)
			if lastCommitted == 0 || handled > total-lastCommitted {
				e.t.Errorf("the last restart did not continue from the committed offsets: it handled %d events of %d, with %d committed before it",
					handled, total, lastCommitted)
			}
		},
	})
}

// TestChaosSinkSIGSTOP freezes one of two sink workers while writes it
// sent are stalled on their way to the target (a proxy holds them). The
// group gives its partitions to the other worker once its session times
// out (waited for: the group's assignment), and that worker applies past
// everything the frozen one had fetched. Then the stalled writes reach
// the target, late, and the frozen worker wakes up: the target must refuse
// every late write as older (the proxy reads its answers), and nothing
// may go backwards.
func TestChaosSinkSIGSTOP(t *testing.T) {
	t.Parallel()
	stops := size(1, 3)
	proxies := make([]*chaos.HoldProxy, 2)
	var adm *kadm.Client
	late := 0
	runChaos(t, "sink-sigstop", chaosCase{
		writer: &chaos.Writer{Keys: size(5000, 20_000), Seed: 9, Rate: 2000, HotKeys: 20, HotShare: 0.3},
		sinks:  2,
		extra:  []string{"--session-timeout", "6s"},
		setup: func(e *chaosEnv) {
			adm = e.kafka()
			for i := range proxies {
				p, err := chaos.StartHoldProxy(e.dst.Addr)
				if err != nil {
					e.t.Fatal(err)
				}
				e.t.Cleanup(func() { p.Close() })
				proxies[i] = p
				e.sinkArgs[i] = []string{"--target-redis-addr", p.Addr}
			}
		},
		writeFor: time.Duration(stops)*25*time.Second + 5*time.Second,
		inject: func(ctx, writing context.Context, e *chaosEnv) int {
			for i := range stops {
				frozen, other := i%2, 1-i%2
				e.waitFor(2*time.Minute, "both workers own partitions", func() (bool, error) {
					owners, err := e.owners(ctx, adm)
					return len(owners[fmt.Sprint("w", frozen)]) > 0 && len(owners[fmt.Sprint("w", other)]) > 0, err
				})
				if !sources.Sleep(writing, 2*time.Second) {
					return i
				}
				proxies[frozen].Hold()
				e.waitFor(time.Minute, "a write of the worker to freeze is stalled", func() (bool, error) { return proxies[frozen].Held() > 0, nil })
				must(e.t, e.sinks[frozen].Signal(syscall.SIGSTOP))
				_, endAtFreeze, err := e.offsets(ctx, adm)
				if err != nil {
					e.t.Fatal(err)
				}
				e.waitFor(2*time.Minute, "the other worker took every partition over", func() (bool, error) {
					owners, err := e.owners(ctx, adm)
					return len(owners) == 1 && len(owners[fmt.Sprint("w", other)]) == 4, err
				})
				e.waitFor(2*time.Minute, "the other worker committed past what the frozen one had fetched", func() (bool, error) {
					committed, _, err := e.offsets(ctx, adm)
					for p, o := range endAtFreeze {
						if committed[p] < o {
							return false, err
						}
					}
					return true, err
				})
				rctx, cancel := context.WithTimeout(ctx, time.Minute)
				lw, err := proxies[frozen].Release(rctx)
				cancel()
				must(e.t, e.sinks[frozen].Signal(syscall.SIGCONT))
				if err != nil {
					_, errOut := e.sinks[frozen].Output()
					e.t.Fatalf("%v\nthe frozen worker's log:\n%s", err, stack.Tail(errOut, 3000))
				}
				e.t.Logf("freeze %d: worker w%d frozen, w%d took over; late writes: %s", i+1, frozen, other, lw)
				if lw.Held == 0 || lw.Applied != 0 || lw.Refused == 0 || lw.Other != 0 {
					e.t.Errorf("the frozen worker's late writes were not all refused as older: %s", lw)
				}
				late += lw.Refused
			}
			return stops
		},
		stopped: func(ctx context.Context, e *chaosEnv) { e.t.Logf("%d late writes, all refused", late) },
	})
}

// gapsRe reads the live capture's summary row: heals, then gaps.
var gapsRe = regexp.MustCompile(`gaps healed\s+([0-9,]+)\s+([0-9,]+) gaps detected`)

// TestChaosSourceRedisRestart restarts the source Redis during live
// replication (its data saved and loaded again, a new run_id) and kills
// cutover's pub/sub connection every few seconds. Every kill that killed
// a connection, and every restart, is a gap that must be detected (the
// summary counts them) and healed (a heal finishes after the last one).
func TestChaosSourceRedisRestart(t *testing.T) {
	t.Parallel()
	rounds, restarts := size(4, 20), size(1, 3)
	made, kills, restarted := 0, 0, 0
	runChaos(t, "source-redis-restart", chaosCase{
		writer:   &chaos.Writer{Keys: size(5000, 20_000), Seed: 4, Rate: 1000, TTLShare: 0.1},
		writeFor: time.Duration(rounds)*3*time.Second + 5*time.Second,
		inject: func(ctx, writing context.Context, e *chaosEnv) int {
			every := rounds / restarts
			for i := range rounds {
				if !sources.Sleep(writing, 3*time.Second) {
					break
				}
				if i%every == every/2 {
					// A restart that keeps the data, as a managed Redis or
					// one with persistence does; the writer waits for it.
					must(e.t, e.writer.Quiesce(ctx))
					e.src.Restart(e.t)
					e.writer.Resume()
					made++
					restarted++
					continue
				}
				// Only a kill of the subscription cutover listens on is a
				// gap: after a gap, wait until it subscribed again (its
				// heal started), or the kill may hit only the connection
				// go-redis reconnected by itself, which cutover closes.
				e.waitFor(2*time.Minute, "cutover subscribed again after the last gap", func() (bool, error) {
					_, errOut := e.source.Output()
					gap := strings.LastIndex(errOut, "changes may have been missed")
					return gap < 0 || strings.Contains(errOut[gap:], "heal started"), nil
				})
				n, err := e.src.Client.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
				if err != nil {
					e.t.Logf("CLIENT KILL TYPE pubsub: %v", err)
				}
				if n > 0 {
					made++
					kills++
				}
			}
			return made
		},
		converged: func(ctx context.Context, e *chaosEnv) {
			// Healed: a heal finished after the last gap was reported.
			e.waitFor(2*time.Minute, "a heal finished after the last gap", func() (bool, error) {
				_, errOut := e.source.Output()
				gap := strings.LastIndex(errOut, "changes may have been missed")
				return gap >= 0 && strings.LastIndex(errOut, "heal done") > gap, nil
			})
		},
		stopped: func(ctx context.Context, e *chaosEnv) {
			out, _ := e.source.Output()
			m := gapsRe.FindStringSubmatch(out)
			if m == nil {
				e.t.Fatalf("the summary has no gaps row:\n%s", out)
			}
			heals, gaps := numberOfRow(m[1]), numberOfRow(m[2])
			e.t.Logf("%d faults made (%d restarts, %d pub/sub connections killed); %d gaps detected, %d heals", made, restarted, kills, gaps, heals)
			if made == 0 || gaps < int64(made) || heals == 0 {
				e.t.Errorf("%d faults made, but %d gaps detected and %d healed:\n%s", made, gaps, heals, out)
			}
		},
	})
}
