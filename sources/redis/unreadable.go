package redis

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cutover/cutover/internal/retry"
	"github.com/cutover/cutover/pipeline"
)

// maxUnreadable bounds the keys remembered as refused; past it the rest
// are only covered by the heal that follows once reading works again.
const maxUnreadable = 100_000

// unreadableSet holds keys the source's user was refused while reading
// them (Redis ACL). A refusal may be for good (the user is not meant to
// read them: each change is dead-lettered, and --exclude is the fix) or
// for a while (an ACL being edited): the keys are read again, with a
// growing pause, until they can be — then their current state is
// published, so a refusal never loses a change for good.
type unreadableSet struct {
	mu   sync.Mutex
	keys map[string]struct{}
	// heal is set when a heal could not sweep because of refused keys,
	// or keys were forgotten past maxUnreadable: once a key can be read
	// again, everything is healed again.
	heal bool
	wake chan struct{}
}

func newUnreadableSet() *unreadableSet {
	return &unreadableSet{keys: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

func (u *unreadableSet) add(key string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.keys) >= maxUnreadable {
		u.heal = true
		return
	}
	u.keys[key] = struct{}{}
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

func (u *unreadableSet) healOnRecovery() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.heal = true
}

// some returns up to n keys.
func (u *unreadableSet) some(n int) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]string, 0, min(n, len(u.keys)))
	for k := range u.keys {
		if len(out) == n {
			break
		}
		out = append(out, k)
	}
	return out
}

// readable removes keys that could be read, and says whether a heal is
// now due.
func (u *unreadableSet) readable(keys []string) (heal bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, k := range keys {
		delete(u.keys, k)
	}
	heal, u.heal = u.heal, false
	return heal
}

func (u *unreadableSet) len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.keys)
}

// retryUnreadable reads the refused keys again, pausing from a second up
// to a minute between tries while they stay refused.
func (l *Live) retryUnreadable(ctx context.Context) error {
	pause := retry.New(0, retry.Initial(time.Second), retry.Max(time.Minute))
	for {
		if l.unreadable.len() == 0 {
			pause.Reset()
			select {
			case <-ctx.Done():
				return nil
			case <-l.unreadable.wake:
			}
		}
		t := time.NewTimer(pause.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		recovered, err := l.rereadUnreadable(ctx)
		var pe *publishError
		switch {
		case errors.As(err, &pe):
			return err
		case err != nil:
			l.log.Debug("live capture: reading refused keys again failed", "err", err)
		case recovered > 0:
			pause.Reset()
		}
	}
}

// rereadUnreadable reads a batch of refused keys and publishes the state
// of those that can be read now (their refusal was dead-lettered already;
// keys still refused are not dead-lettered again).
func (l *Live) rereadUnreadable(ctx context.Context) (int, error) {
	keys := l.unreadable.some(l.opts.BatchSize)
	if len(keys) == 0 {
		return 0, nil
	}
	l.inflight.RLock()
	defer l.inflight.RUnlock()
	b, info, err := l.reader.Read(ctx, keys, pipeline.OriginLive, nil)
	if err != nil {
		return 0, err
	}
	still := map[string]bool{}
	for _, r := range b.Rejects {
		if r.Class == RejectUnreadable {
			still[string(r.Key)] = true
		}
	}
	for _, k := range info.Elsewhere {
		still[k] = true
	}
	var done []string
	for _, k := range keys {
		if !still[k] {
			done = append(done, k)
		}
	}
	if len(done) == 0 {
		return 0, nil
	}
	// What is readable now goes out like any change; big keys and the
	// other rejects through the usual path.
	read := pipeline.Batch{Events: b.Events}
	for _, r := range b.Rejects {
		if r.Class != RejectUnreadable {
			read.Rejects = append(read.Rejects, r)
		}
	}
	l.events.Add(int64(len(read.Events)))
	if err := l.pub.Publish(ctx, read, nil); err != nil {
		return 0, &publishError{err}
	}
	for _, big := range info.Big {
		l.dirty.add(big.Key) // read again, whole, by the read loop
	}
	heal := l.unreadable.readable(done)
	l.log.Info("live capture: keys refused before can be read again; their current state is published", "keys", len(done))
	if heal {
		l.RequestHeal("keys that could not be read can be read again: the heal that could not sweep runs again")
	}
	return len(done), nil
}
