package kafka

import (
	"context"
	"sync"

	"github.com/cutover/cutover/pipeline"
)

// job is one record on its way to the sink: a decoded event, or a record
// that could not be decoded (to dead-letter).
type job struct {
	t         *tracked
	event     pipeline.Event
	decodeErr error
}

// keyQueue holds the jobs of every key in flight, one queue per key, so
// that the events of one key are applied one after the other, in
// partition order, while different keys are applied in parallel. A key
// whose write is slow holds up only its own later events: the records
// fetched behind it keep flowing to the other keys until the in-flight
// window is full.
type keyQueue struct {
	mu    sync.Mutex
	keys  map[string]*keyJobs // keys with jobs queued or a call in flight
	ready []*keyJobs          // keys with jobs queued and no call in flight, oldest first
	wake  chan struct{}       // a signal per push, for the appliers waiting
}

// keyJobs is one key's queue.
type keyJobs struct {
	key   string
	jobs  []job
	busy  bool // a sink call holds some of its jobs
	ready bool // it is in keyQueue.ready
}

func newKeyQueue(appliers int) *keyQueue {
	return &keyQueue{keys: map[string]*keyJobs{}, wake: make(chan struct{}, appliers)}
}

func (q *keyQueue) push(key []byte, j job) {
	q.mu.Lock()
	k := q.keys[string(key)]
	if k == nil {
		k = &keyJobs{key: string(key)}
		q.keys[k.key] = k
	}
	k.jobs = append(k.jobs, j)
	if !k.busy && !k.ready {
		k.ready = true
		q.ready = append(q.ready, k)
	}
	q.mu.Unlock()
	q.signal()
}

func (q *keyQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default: // every applier has a signal waiting already
	}
}

// take waits for jobs of keys with no call in flight, and returns up to
// n of them (at least every queued job of the first key, so that a key
// is never split across calls) with the keys they belong to, now busy.
func (q *keyQueue) take(ctx context.Context, n int) ([]job, []*keyJobs, bool) {
	for {
		q.mu.Lock()
		var jobs []job
		var keys []*keyJobs
		for len(q.ready) > 0 && (len(jobs) == 0 || len(jobs)+len(q.ready[0].jobs) <= n) {
			k := q.ready[0]
			q.ready[0] = nil
			q.ready = q.ready[1:]
			k.ready, k.busy = false, true
			jobs = append(jobs, k.jobs...)
			k.jobs = nil
			keys = append(keys, k)
		}
		more := len(q.ready) > 0
		q.mu.Unlock()
		if more {
			q.signal() // another applier can take the rest
		}
		if len(jobs) > 0 {
			return jobs, keys, true
		}
		select {
		case <-ctx.Done():
			return nil, nil, false
		case <-q.wake:
		}
	}
}

// done ends the calls of keys: those with jobs queued meanwhile are ready
// again, the others are forgotten.
func (q *keyQueue) done(keys []*keyJobs) {
	q.mu.Lock()
	again := false
	for _, k := range keys {
		k.busy = false
		if len(k.jobs) == 0 {
			delete(q.keys, k.key)
			continue
		}
		k.ready = true
		q.ready = append(q.ready, k)
		again = true
	}
	q.mu.Unlock()
	if again {
		q.signal()
	}
}
