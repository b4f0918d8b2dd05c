package chaos

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// NotifyMonitor watches a target Redis for regressions the whole time a
// test runs, not at sampling instants: it subscribes to the target's
// keyevent notifications and reads every key that changed, recording for
// each key the highest sequence number it ever showed. A key that later
// shows a smaller one went backwards: an older write was applied over a
// newer one, or a deleted key came back with an older value. A key may
// vanish (deleted in the source, expired, swept) and come back with a
// larger sequence number; only "smaller than ever seen" counts, across
// deletes too, since the writers' sequence is global and only grows.
//
// What it cannot see: a regression overwritten by a newer write before
// its notification was read (reads are batched and coalesced per key).
// Everything else is read: the target's pub/sub output buffer limit is
// lifted, and a broken subscription, a failed read or a monitor that read
// nothing is an error, never a silent zero.
type NotifyMonitor struct {
	cl     *goredis.Client
	ps     *goredis.PubSub
	skip   string
	cancel context.CancelFunc
	done   sync.WaitGroup
	wake   chan struct{}
	synced chan string

	mu            sync.Mutex
	dirty         map[string]struct{}
	max           map[string]int64
	last          map[string]int64 // the last sequence number read, to count a regressed value once
	reads         int64
	notifications int64
	regressions   int64
	unparsed      int64
	examples      []string
	err           error
	step          string
	marks         map[string]bool
}

// MonitorReport is what a NotifyMonitor saw.
type MonitorReport struct {
	// Reads is how many key reads it made; Keys how many keys it saw hold
	// a value; Notifications how many changes it was told about.
	Reads, Keys, Notifications int64
	// Regressions is how many times a key showed a smaller sequence
	// number than before; Examples say which, and during which step.
	Regressions int64
	// Unparsed counts values without a writer's sequence number.
	Unparsed int64
	Examples []string
	// Err is the first failure of the monitor itself (a read error, the
	// subscription lost): its counts cannot be trusted then.
	Err error
}

// seqScript returns a key's type and the part of its value that holds
// the sequence number: a string's first 17 bytes, a hash's seq field.
var seqScript = goredis.NewScript(`
local t = redis.call('TYPE', KEYS[1])['ok']
if t == 'string' then return {t, redis.call('GETRANGE', KEYS[1], 0, 16)} end
if t == 'hash' then return {t, redis.call('HGET', KEYS[1], '` + SeqField + `') or ''} end
return {t, ''}
`)

// StartNotifyMonitor turns on keyevent notifications in cl's server,
// subscribes to those of cl's database and starts watching. Keys that
// start with skipPrefix (cutover's version keys) are ignored.
func StartNotifyMonitor(ctx context.Context, cl *goredis.Client, skipPrefix string) (*NotifyMonitor, error) {
	addr := cl.Options().Addr
	if err := cl.ConfigSet(ctx, "notify-keyspace-events", "EA").Err(); err != nil {
		return nil, fmt.Errorf("turn on keyevent notifications on the target %s: %w", addr, err)
	}
	// A subscriber the server drops for a full output buffer would miss
	// changes silently: no limit for pub/sub clients.
	if err := cl.ConfigSet(ctx, "client-output-buffer-limit", "pubsub 0 0 0").Err(); err != nil {
		return nil, fmt.Errorf("lift the pub/sub output buffer limit of %s: %w", addr, err)
	}
	if err := seqScript.Load(ctx, cl).Err(); err != nil {
		return nil, fmt.Errorf("load the monitor's script into %s: %w", addr, err)
	}
	channel := fmt.Sprintf("__keyevent@%d__:*", cl.Options().DB)
	ps := cl.PSubscribe(ctx, channel)
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		ps.Close()
		return nil, fmt.Errorf("subscribe to %s on %s: %w", channel, addr, err)
	}
	m := &NotifyMonitor{cl: cl, ps: ps, skip: skipPrefix, wake: make(chan struct{}, 1), synced: make(chan string, 16),
		dirty: map[string]struct{}{}, max: map[string]int64{}, last: map[string]int64{}, marks: map[string]bool{}}
	ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	m.done.Add(2)
	go m.receive(ctx)
	go m.readLoop(ctx)
	return m, nil
}

// syncChannel carries Sync's markers: it matches the subscription's
// pattern, and no key event uses it.
func (m *NotifyMonitor) syncChannel() string {
	return fmt.Sprintf("__keyevent@%d__:cutover-monitor-sync", m.cl.Options().DB)
}

func (m *NotifyMonitor) receive(ctx context.Context) {
	defer m.done.Done()
	syncCh := m.syncChannel()
	for {
		msg, err := m.ps.Receive(ctx)
		if err != nil {
			if ctx.Err() == nil {
				m.fail(fmt.Errorf("the monitor's subscription broke (changes may have been missed): %w", err))
			}
			return
		}
		switch msg := msg.(type) {
		case *goredis.Message:
			if msg.Channel == syncCh {
				m.mu.Lock()
				m.marks[msg.Payload] = true
				m.mu.Unlock()
				m.poke()
				continue
			}
			if m.skip != "" && strings.HasPrefix(msg.Payload, m.skip) {
				continue
			}
			m.mu.Lock()
			m.notifications++
			m.dirty[msg.Payload] = struct{}{}
			m.mu.Unlock()
			m.poke()
		case *goredis.Subscription:
			if msg.Kind != "psubscribe" {
				m.fail(fmt.Errorf("the monitor's subscription changed: %s %s", msg.Kind, msg.Channel))
				return
			}
		}
	}
}

func (m *NotifyMonitor) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *NotifyMonitor) fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err == nil {
		m.err = err
	}
}

// readLoop reads the keys that changed, in pipelined batches, until ctx
// ends.
func (m *NotifyMonitor) readLoop(ctx context.Context) {
	defer m.done.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		}
		for {
			m.mu.Lock()
			keys := make([]string, 0, min(len(m.dirty), 500))
			for k := range m.dirty {
				keys = append(keys, k)
				delete(m.dirty, k)
				if len(keys) == 500 {
					break
				}
			}
			var marks []string
			if len(keys) == 0 {
				for mark := range m.marks {
					marks = append(marks, mark)
					delete(m.marks, mark)
				}
			}
			m.mu.Unlock()
			for _, mark := range marks {
				m.synced <- mark
			}
			if len(keys) == 0 {
				break
			}
			if err := m.read(ctx, keys); err != nil {
				if ctx.Err() == nil {
					m.fail(err)
				}
				return
			}
		}
	}
}

func (m *NotifyMonitor) read(ctx context.Context, keys []string) error {
	pipe := m.cl.Pipeline()
	cmds := make([]*goredis.Cmd, len(keys))
	for i, k := range keys {
		cmds[i] = seqScript.EvalSha(ctx, pipe, []string{k})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("the monitor could not read %d keys of the target: %w", len(keys), err)
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, c := range cmds {
		m.reads++
		arr, _ := c.Val().([]any)
		if len(arr) != 2 {
			return fmt.Errorf("the monitor read %q: unexpected reply %v", keys[i], c.Val())
		}
		typ, _ := arr[0].(string)
		raw, _ := arr[1].(string)
		if typ == "none" {
			continue
		}
		var seq int64
		var ok bool
		if typ == "string" {
			seq, ok = Seq([]byte(raw))
		} else if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
			seq, ok = n, true
		}
		if !ok {
			m.unparsed++
			if len(m.examples) < 20 {
				m.examples = append(m.examples, fmt.Sprintf("%s %q: a %s without a sequence number", now.Format("15:04:05.000"), keys[i], typ))
			}
			continue
		}
		prev, seen := m.max[keys[i]]
		last := m.last[keys[i]]
		m.last[keys[i]] = seq
		switch {
		case seen && seq < prev && seq == last:
			// The same regressed value read again (a second notification).
		case seen && seq < prev:
			m.regressions++
			if len(m.examples) < 20 {
				m.examples = append(m.examples, fmt.Sprintf("%s during %q: %q showed seq %d, then %d", now.Format("15:04:05.000"), m.step, keys[i], prev, seq))
			}
		case !seen || seq > prev:
			m.max[keys[i]] = seq
		}
	}
	return nil
}

// Step names what the test does now; regressions are reported with it.
func (m *NotifyMonitor) Step(name string) {
	m.mu.Lock()
	m.step = name
	m.mu.Unlock()
}

// Sync waits until the monitor has read every change the target made
// before Sync was called: it publishes a marker behind them on the
// subscription's pattern and waits until the marker arrived and every key
// before it was read.
func (m *NotifyMonitor) Sync(ctx context.Context) error {
	mark := strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := m.cl.Publish(ctx, m.syncChannel(), mark).Err(); err != nil {
		return fmt.Errorf("publish the monitor's sync marker: %w", err)
	}
	deadline := time.After(time.Minute)
	for {
		select {
		case got := <-m.synced:
			if got == mark {
				return m.Report().Err
			}
		case <-deadline:
			return errors.New("the monitor did not catch up with the target's changes within a minute")
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := m.Report().Err; err != nil {
			return err
		}
	}
}

// Report is what the monitor saw so far.
func (m *NotifyMonitor) Report() MonitorReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MonitorReport{Reads: m.reads, Keys: int64(len(m.max)), Notifications: m.notifications,
		Regressions: m.regressions, Unparsed: m.unparsed, Examples: append([]string(nil), m.examples...), Err: m.err}
}

// Stop ends the monitor and returns its final report. A monitor that read
// nothing reports an error: it would otherwise prove nothing.
func (m *NotifyMonitor) Stop() MonitorReport {
	m.cancel()
	m.ps.Close()
	m.done.Wait()
	r := m.Report()
	if r.Err == nil && r.Reads == 0 {
		r.Err = errors.New("the monitor read no key of the target: it proves nothing")
	}
	return r
}

func (r MonitorReport) String() string {
	s := fmt.Sprintf("monitor: %d notifications, %d reads, %d keys seen, %d regressions, %d values without a sequence number",
		r.Notifications, r.Reads, r.Keys, r.Regressions, r.Unparsed)
	if r.Err != nil {
		s += "; FAILED: " + r.Err.Error()
	}
	if len(r.Examples) > 0 {
		s += "\n    " + strings.Join(r.Examples, "\n    ")
	}
	return s
}
