package test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/test/chaos"
	"github.com/cutover/cutover/test/faultproxy"
	"github.com/cutover/cutover/test/stack"
)

// chaosEnv is what a scenario's fault injection works on.
type chaosEnv struct {
	t      *testing.T
	src    *stack.Redis
	dst    *stack.Redis // nil with a DynamoDB target
	mon    *chaos.NotifyMonitor
	db     *dynamodb.Client
	proxy  *faultproxy.Proxy
	p      pipelineArgs
	writer *chaos.Writer
	// sinkArgs are extra flags of sink worker i.
	sinkArgs map[int][]string
	// faults counts faults injected after the writer stopped (a replay).
	faults int

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
	args := withFlags(e.p.args, e.sinkArgs[i]...)
	proc := stack.Start(e.t, nil, append([]string{"sink", "--worker-id", fmt.Sprint("w", i)}, args...)...)
	e.mu.Lock()
	e.sinks[i] = proc
	e.mu.Unlock()
}

// stopAll stops every process with SIGTERM, the source first, and fails
// the test unless each exits 0.
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

// states reads the source and the target, key by key.
func (e *chaosEnv) states(ctx context.Context) (src, dst map[string]chaos.KeyState, err error) {
	if src, err = chaos.ReadRedis(ctx, e.src.Client, ""); err != nil {
		return nil, nil, fmt.Errorf("read the source: %w", err)
	}
	if e.dst != nil {
		dst, err = chaos.ReadRedis(ctx, e.dst.Client, versionPrefix)
	} else {
		dst, err = chaos.ReadTable(ctx, e.db, e.p.table, chaos.GenericLayout)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read the target: %w", err)
	}
	return src, dst, nil
}

// step names what the scenario does now, for the monitor's examples.
func (e *chaosEnv) step(name string) {
	if e.mon != nil {
		e.mon.Step(name)
	}
}

// waitStarted waits until the source process is past its start (it
// logged progress): a fault during the start is a start that fails and
// says why, not the fault a scenario is about.
func (e *chaosEnv) waitStarted() {
	e.waitFor(2*time.Minute, "the source started", func() (bool, error) {
		if e.source.Exited() {
			_, errOut := e.source.Output()
			return false, fmt.Errorf("replicate exited:\n%s", stack.Tail(errOut, 2000))
		}
		_, errOut := e.source.Output()
		return strings.Contains(errOut, "msg=progress"), nil
	})
}

// waitWrites waits until the pipeline wrote to the DynamoDB target
// through the fault proxy: a fault set before would hit nothing.
func (e *chaosEnv) waitWrites() {
	e.waitFor(2*time.Minute, "the sink writes to the table", func() (bool, error) {
		if e.source.Exited() {
			_, errOut := e.source.Output()
			return false, fmt.Errorf("replicate exited:\n%s", stack.Tail(errOut, 2000))
		}
		return e.proxy.Stats().Writes > 0, nil
	})
}

// converge compares the stores until they are equal, or within passed;
// it returns the last comparison.
func (e *chaosEnv) converge(ctx context.Context, within time.Duration) chaos.Diff {
	deadline := time.Now().Add(within)
	next := time.Now().Add(15 * time.Second)
	for {
		src, dst, err := e.states(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		d := chaos.CompareStates(src, dst, time.Now(), ttlTolerance)
		if d.OK() || time.Now().After(deadline) {
			return d
		}
		if e.mon != nil && e.mon.Report().Regressions > 0 {
			return d // a guarantee broke already: no need to wait
		}
		if time.Now().After(next) {
			e.t.Logf("still catching up: %s", d)
			next = time.Now().Add(15 * time.Second)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// caughtUp waits until the sink group has committed every event the
// topic held when it was called (the writers have stopped; what the
// source publishes later, such as the deletes of keys that expire, is
// left to converge). It waits as long as the sink keeps committing,
// however slowly (a target that takes 20 writes a second, like a
// DynamoDB Local that has seen much use, only makes the run longer), and
// fails once the group has committed nothing for stall while events
// wait: a stuck pipeline, not a slow one.
func (e *chaosEnv) caughtUp(ctx context.Context, stall time.Duration) {
	e.t.Helper()
	adm := e.kafka()
	_, target, err := e.offsets(ctx, adm)
	if err != nil {
		e.t.Fatal(err)
	}
	var best int64 = -1
	progressed, next := time.Now(), time.Now().Add(15*time.Second)
	for {
		committed, _, err := e.offsets(ctx, adm)
		if err != nil {
			e.t.Fatal(err)
		}
		var done, left int64
		for p, o := range target {
			done += committed[p]
			left += max(o-committed[p], 0)
		}
		if left == 0 {
			return
		}
		if done > best {
			best, progressed = done, time.Now()
		}
		if time.Since(progressed) > stall {
			e.t.Fatalf("the sink group %s committed nothing for %v with %d events left to apply", e.group(), stall, left)
		}
		if time.Now().After(next) {
			e.t.Logf("sink catching up: %d events left to apply", left)
			next = time.Now().Add(15 * time.Second)
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("still %d events to apply when the test's time ran out: %v", left, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// kafka is an admin client of the pipeline's brokers.
func (e *chaosEnv) kafka() *kadm.Client {
	brokers := stack.KafkaBrokers(e.t)
	if i := slices.Index(e.p.args, "--kafka-brokers"); i >= 0 {
		brokers = strings.Split(e.p.args[i+1], ",")
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func (e *chaosEnv) group() string { return "cutover-" + e.p.name + "-sink" }

func (e *chaosEnv) topic() string { return "cutover." + e.p.name }

// offsets are the group's committed offsets and the topic's end offsets,
// by partition.
func (e *chaosEnv) offsets(ctx context.Context, adm *kadm.Client) (committed, end map[int32]int64, err error) {
	committed, end = map[int32]int64{}, map[int32]int64{}
	fetched, err := adm.FetchOffsets(ctx, e.group())
	if err != nil {
		return nil, nil, fmt.Errorf("committed offsets of group %s: %w", e.group(), err)
	}
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Topic == e.topic() && o.Err == nil {
			committed[o.Partition] = o.At
		}
	})
	ends, err := adm.ListEndOffsets(ctx, e.topic())
	if err != nil {
		return nil, nil, fmt.Errorf("end offsets of %s: %w", e.topic(), err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			end[o.Partition] = o.Offset
		}
	})
	return committed, end, nil
}

// waitFor polls cond every 100 ms until it holds, or fails the test with
// what after within.
func (e *chaosEnv) waitFor(within time.Duration, what string, cond func() (bool, error)) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, err := cond()
		if err != nil {
			e.t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// owners is which worker owns which partitions of the topic, by worker
// id; members that own nothing are left out.
func (e *chaosEnv) owners(ctx context.Context, adm *kadm.Client) (map[string][]int32, error) {
	groups, err := adm.DescribeGroups(ctx, e.group())
	if err != nil {
		return nil, fmt.Errorf("describe group %s: %w", e.group(), err)
	}
	out := map[string][]int32{}
	g, ok := groups[e.group()]
	if !ok || g.Err != nil || g.State != "Stable" {
		return out, nil // not formed yet, or a rebalance in progress: look again
	}
	prefix := "cutover-" + e.p.name + "-"
	for _, m := range g.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok || m.InstanceID == nil {
			continue
		}
		for _, tp := range a.Topics {
			if tp.Topic == e.topic() && len(tp.Partitions) > 0 {
				id := strings.TrimPrefix(*m.InstanceID, prefix)
				out[id] = append(out[id], tp.Partitions...)
			}
		}
	}
	return out, nil
}
