package redis

import "sync"

// dirtySet holds changed keys waiting to be read, each once, in the order
// they first changed.
//
// It also counts the keys added and taken, for a drain: the keys are
// taken in the order they were added, so once taken reaches the count
// added at some moment (mark), every key dirty at that moment has been
// taken (or dropped by clear, which a heal answers).
type dirtySet struct {
	mu    sync.Mutex
	keys  map[string]struct{}
	queue []string
	wake  chan struct{}

	added int64 // keys ever added (a key already dirty is not added again)
	taken *gate // keys ever taken or cleared
}

func newDirtySet() *dirtySet {
	return &dirtySet{keys: map[string]struct{}{}, wake: make(chan struct{}, 1), taken: newGate()}
}

// mark is the count of keys added so far: waitTaken(mark) returns once
// every key dirty now has been taken.
func (d *dirtySet) mark() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.added
}

// add marks key dirty and returns how many keys are dirty.
func (d *dirtySet) add(key string) int {
	d.mu.Lock()
	if _, ok := d.keys[key]; !ok {
		d.keys[key] = struct{}{}
		d.queue = append(d.queue, key)
		d.added++
	}
	n := len(d.keys)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return n
}

// take removes up to n keys. A key changed again after take is marked
// dirty again, so it is read again: its newer state is never missed.
func (d *dirtySet) take(n int) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	n = min(n, len(d.queue))
	out := make([]string, n)
	copy(out, d.queue[:n])
	d.queue = d.queue[n:]
	for _, k := range out {
		delete(d.keys, k)
	}
	d.taken.add(int64(n))
	if len(d.queue) > 0 {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	if len(d.queue) == 0 && cap(d.queue) > 4096 {
		d.queue = nil // give back a large backlog's memory
	}
	return out
}

func (d *dirtySet) clear() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keys = map[string]struct{}{}
	d.queue = nil
	d.taken.set(d.added)
}

func (d *dirtySet) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.keys)
}
