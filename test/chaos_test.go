package test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/sources"
	"github.com/cutover/cutover/test/chaos"
	"github.com/cutover/cutover/test/faultproxy"
	"github.com/cutover/cutover/test/stack"
)

// The chaos scenarios inject one kind of fault while a chaos.Writer
// changes the source, then prove the guarantees: once the writer stops and
// the pipeline catches up, no key is lost, none went backwards (watched
// the whole time), no delete came back, and reconcile finds the stores
// equal, TTLs included. Each prints one line (chaos.Result).
//
// make test runs the three scenarios of this file, short (a few faults
// each). make chaos adds those of chaos_full_test.go (build tag chaos),
// sets CUTOVER_CHAOS=full for the full sizes and writes every line to
// CUTOVER_CHAOS_REPORT.

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
	// dynamodb sends the events to a DynamoDB table (through fault proxy)
	// instead of a Redis target.
	dynamodb bool
	// sinks > 0 runs the source alone (replicate --no-sink) and that many
	// sink workers; 0 runs one replicate process doing both.
	sinks int
	extra []string
	// setup runs before the cutover processes start (to point the
	// pipeline at a proxy, say).
	setup func(e *chaosEnv)
	// writeFor is how long the writer runs; inject runs meanwhile and
	// returns how many faults it injected.
	writeFor time.Duration
	inject   func(ctx context.Context, e *chaosEnv) int
	// afterwards runs once the target converged and every process
	// stopped (a replay, say); the stores are compared again after it.
	afterwards func(e *chaosEnv)
}

// chaosEnv is what a scenario's fault injection works on.
type chaosEnv struct {
	t      *testing.T
	src    *stack.Redis
	dst    *stack.Redis // nil with a DynamoDB target
	proxy  *faultproxy.Proxy
	p      pipelineArgs
	writer *chaos.Writer

	mu     sync.Mutex
	source *stack.Proc
	sinks  []*stack.Proc
}

func (e *chaosEnv) startSource() {
	args := []string{"replicate"}
	if len(e.sinks) > 0 {
		args = append(args, "--no-sink")
	}
	proc := stack.Start(e.t, nil, append(args, e.p.args...)...)
	e.mu.Lock()
	e.source = proc
	e.mu.Unlock()
}

func (e *chaosEnv) startSink(i int) {
	proc := stack.Start(e.t, nil, append([]string{"sink", "--worker-id", fmt.Sprint("w", i)}, e.p.args...)...)
	e.mu.Lock()
	e.sinks[i] = proc
	e.mu.Unlock()
}

// stopAll stops every process with SIGTERM and fails the test unless each
// exits 0.
func (e *chaosEnv) stopAll() {
	e.mu.Lock()
	procs := append([]*stack.Proc{e.source}, e.sinks...)
	e.mu.Unlock()
	for _, proc := range procs {
		if code := proc.Stop(); code != 0 {
			_, errOut := proc.Output()
			e.t.Errorf("a cutover process exited %d on SIGTERM\n%s", code, stack.Tail(errOut, 3000))
		}
	}
}

// runChaos runs one scenario and checks its result.
func runChaos(t *testing.T, name string, c chaosCase) chaos.Result {
	t.Helper()
	begin := time.Now()
	ctx := testCtx(t, 15*time.Minute)
	e := &chaosEnv{t: t, src: stack.NewRedis(t), writer: c.writer, sinks: make([]*stack.Proc, c.sinks)}
	if err := c.writer.Fill(ctx, e.src.Client); err != nil {
		t.Fatal(err)
	}
	var target chaos.Reader
	if c.dynamodb {
		stack.LoadDynamoDB(t, 1)
		proxy, err := faultproxy.Start("127.0.0.1:0", stack.DynamoDBEndpoint(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { proxy.Close() })
		e.proxy = proxy
		e.p = newPipeline(t, e.src, "--create-table", "--key-type", "S")
		e.p.args = withFlags(e.p.args, "--dynamodb-endpoint", proxy.URL)
		target = chaos.DynamoDBReader{Client: dynamoClient(t), Table: e.p.table}
	} else {
		e.dst = stack.NewRedis(t)
		e.p = newRedisPipeline(t, e.src, e.dst)
		target = chaos.RedisReader{Client: e.dst.Client}
	}
	e.p.args = append(e.p.args, c.extra...)
	if c.setup != nil {
		c.setup(e)
	}
	e.startSource()
	for i := range e.sinks {
		e.startSink(i)
	}

	// The writer, the monitor and the faults, for writeFor.
	wctx, stopWriting := context.WithTimeout(ctx, c.writeFor)
	defer stopWriting()
	mctx, stopMonitor := context.WithCancel(ctx)
	defer stopMonitor()
	var monitor chaos.Monitor
	var wg sync.WaitGroup
	wg.Go(func() { c.writer.Run(wctx, e.src.Client) })
	every := size(300*time.Millisecond, time.Second)
	if c.dynamodb {
		every = 2 * time.Second
	}
	var mwg sync.WaitGroup
	mwg.Go(func() { monitor.Run(mctx, target, c.writer.KeyNames(), every) })
	faults := 0
	if c.inject != nil {
		faults = c.inject(wctx, e)
	}
	<-wctx.Done()
	wg.Wait()

	keys := c.writer.KeyNames()
	src := chaos.RedisReader{Client: e.src.Client}
	res, err := chaos.WaitConverged(ctx, src, target, keys, 3*time.Minute)
	if err != nil {
		t.Fatalf("compare the stores: %v", err)
	}
	stopMonitor()
	mwg.Wait()
	e.stopAll()
	if c.afterwards != nil && res.OK() {
		c.afterwards(e)
		// A short wait: a key can expire in one store a moment before the
		// other.
		if res, err = chaos.WaitConverged(ctx, src, target, keys, 5*time.Second); err != nil {
			t.Fatalf("compare the stores: %v", err)
		}
	}
	regressions, examples := monitor.Regressions()
	res.Regressions += regressions
	res.Examples = append(res.Examples, examples...)
	// reconcile compares what Compare does not: types and TTLs.
	if e.proxy != nil {
		e.proxy.Set(faultproxy.Faults{})
	}
	rec := stack.Run(ctx, t, append([]string{"reconcile", "--output", "json", "--recheck-delay", "500ms"}, e.p.args...)...)
	var rep reconcileReport
	if rec.Code != 0 && rec.Code != 4 || json.Unmarshal([]byte(rec.Stdout), &rep) != nil {
		t.Fatalf("reconcile exited %d\n%s\n%s", rec.Code, rec.Stdout, rec.Stderr)
	}
	if rep.Remaining > 0 {
		res.Differences += rep.Remaining
		res.Examples = append(res.Examples, "reconcile: "+stack.Tail(rec.Stdout, 800))
	}
	res.Scenario, res.Faults, res.Events, res.Keys, res.Took = name, faults, c.writer.Ops(), c.writer.Keys, time.Since(begin)
	t.Log(res.String())
	writeChaosLine(t, res)
	if !res.OK() {
		_, errOut := e.source.Output()
		t.Errorf("%s broke a guarantee:\n  %s\nthe source's log ends:\n%s", name, strings.Join(res.Examples, "\n  "), stack.Tail(errOut, 4000))
	}
	return res
}

// writeChaosLine appends the result to CUTOVER_CHAOS_REPORT, when set.
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
	if !r.OK() {
		ok = "**no**"
	}
	fmt.Fprintf(f, "| %s | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n", r.Scenario, r.Faults, r.Events, r.Keys,
		r.Lost, r.Regressions, r.Resurrected, r.Differences, r.Took.Round(time.Second), ok)
}

// TestChaosSinkSIGKILL kills the sink worker at random moments during the
// snapshot and the live writes that follow it; each restart continues from
// the group's committed offsets.
func TestChaosSinkSIGKILL(t *testing.T) {
	t.Parallel()
	kills := size(3, 20)
	runChaos(t, "sink-sigkill", chaosCase{
		writer: &chaos.Writer{Keys: size(20_000, 100_000), Seed: 1, Rate: 2000, TTLShare: 0.1},
		sinks:  1,
		extra:  []string{"--keys-per-second", size("10000", "20000")},
		// About 2.5s between kills, and time to catch up after the last.
		writeFor: time.Duration(kills)*2500*time.Millisecond + 5*time.Second,
		inject: func(ctx context.Context, e *chaosEnv) int {
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range kills {
				if !sources.Sleep(ctx, time.Duration(1000+rng.IntN(3000))*time.Millisecond) {
					return i
				}
				e.sinks[0].Kill()
				e.startSink(0)
			}
			return kills
		},
	})
}

// TestChaosSinkSIGSTOP freezes one of two sink workers past the group's
// session timeout: its partitions move to the other worker, which goes on
// writing. When the frozen one wakes up, whatever it still had in flight
// is older than the target and is refused by version.
func TestChaosSinkSIGSTOP(t *testing.T) {
	t.Parallel()
	stops := size(1, 3)
	runChaos(t, "sink-sigstop", chaosCase{
		writer:   &chaos.Writer{Keys: size(5000, 20_000), Seed: 9, Rate: 2000, HotKeys: 20, HotShare: 0.3},
		sinks:    2,
		extra:    []string{"--session-timeout", "6s"},
		writeFor: time.Duration(stops)*15*time.Second + 5*time.Second,
		inject: func(ctx context.Context, e *chaosEnv) int {
			for i := range stops {
				if !sources.Sleep(ctx, 2*time.Second) {
					return i
				}
				frozen := e.sinks[i%2]
				must(e.t, frozen.Signal(syscall.SIGSTOP))
				sources.Sleep(context.Background(), 10*time.Second) // past the 6s session timeout
				must(e.t, frozen.Signal(syscall.SIGCONT))
			}
			return stops
		},
	})
}

// TestChaosSourceRedisRestart restarts the source Redis during live
// replication (its data saved and loaded again, a new run_id) and kills
// cutover's pub/sub connection every few seconds; each gap is detected
// and healed.
func TestChaosSourceRedisRestart(t *testing.T) {
	t.Parallel()
	restarts, kills := size(1, 3), size(4, 20)
	runChaos(t, "source-redis-restart", chaosCase{
		writer:   &chaos.Writer{Keys: size(5000, 20_000), Seed: 4, Rate: 1000, TTLShare: 0.1},
		writeFor: time.Duration(kills)*3*time.Second + 5*time.Second,
		inject: func(ctx context.Context, e *chaosEnv) int {
			faults := 0
			for i := range kills {
				if !sources.Sleep(ctx, 3*time.Second) {
					break
				}
				if i%(kills/restarts) == kills/restarts/2 && faults < restarts+kills {
					// A restart that keeps the data, as a managed Redis or
					// one with persistence does; the writer waits for it.
					e.writer.Pause()
					time.Sleep(100 * time.Millisecond)
					e.src.Restart(e.t)
					e.writer.Resume()
				} else if err := e.src.Client.ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
					e.t.Logf("CLIENT KILL TYPE pubsub: %v", err)
				}
				faults++
			}
			return faults
		},
	})
}
