package redis

import (
	"context"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
)

// How much one call of pageScript reads: at most pageKeys keys, and no
// further key once the values read add up to pageBytes. The server runs
// nothing else while a script runs, so these bound the pause other
// clients see as much as the size of the reply; a value over the budget
// is read whole still (read whole, a value is at most one Kafka record),
// alone or last in its call.
const (
	pageKeys  = 1000
	pageBytes = 2 << 20
)

// keyRead is what reading one key of a page came to: what the script
// said of it, or a refusal that is the key's alone (the ACL forbids it, or
// its slot is served elsewhere).
type keyRead struct {
	res readResult
	err error
}

// readCall is one script call of a round: the keys it reads (indexes into
// the page), and whether it is readScript on one key.
type readCall struct {
	keys   []int
	single bool
	cmd    *goredis.Cmd
}

// readPage reads keys with as few script calls as the server allows:
// pageScript on each group of keys (one group, or one per cluster slot),
// in one pipelined round trip; the keys a call did not reach (its budget)
// go to the next round, until every key is read. A group the server
// refuses whole falls back to readScript, key by key: a key the ACL
// forbids (NOPERM fails the script for all its keys) or a slot in
// migration (TRYAGAIN, when only some of the keys are still here).
//
// Failures that are not a key's own are returned, and Read retries the
// page; a missing script is loaded again first.
func (r *Reader) readPage(ctx context.Context, keys []string) ([]keyRead, error) {
	out := make([]keyRead, len(keys))
	alone := make([]bool, len(keys)) // to read with readScript: its group was refused
	todo := make([]int, len(keys))
	for i := range todo {
		todo[i] = i
	}
	for len(todo) > 0 {
		calls := r.plan(keys, todo, alone)
		pipe := r.cl.Pipeline()
		for i := range calls {
			c := &calls[i]
			if c.single {
				c.cmd = r.evalRead(ctx, pipe, keys[c.keys[0]])
			} else {
				c.cmd = r.evalPage(ctx, pipe, keys, c.keys)
			}
		}
		_, _ = pipe.Exec(ctx) // each call's error is looked at below
		var next []int
		for _, c := range calls {
			err := c.cmd.Err()
			switch {
			case err == nil:
				names := make([]string, len(c.keys))
				for j, i := range c.keys {
					names[j] = keys[i]
				}
				res, err := parseReads(names, c.cmd.Val())
				if err != nil {
					return nil, err
				}
				if c.single && len(res) != 1 {
					return nil, fmt.Errorf("read script returned %d results for key %q", len(res), names[0])
				}
				for j, i := range c.keys {
					if j < len(res) {
						out[i].res = res[j]
					} else {
						next = append(next, i)
					}
				}
			case isElsewhere(err):
				// The group's slot (a group shares one) is served by
				// another master, or its keys all moved on already.
				for _, i := range c.keys {
					out[i].err = err
				}
			case c.single && isKeyForbidden(err):
				out[c.keys[0]].err = err
			case !c.single && (isKeyForbidden(err) || isTryAgain(err)):
				for _, i := range c.keys {
					alone[i] = true
				}
				next = append(next, c.keys...)
			case !c.single && isCrossSlot(err) && !r.bySlot.Load():
				// A master of a cluster, reached by its own client: its
				// keys go by slot from now on.
				r.bySlot.Store(true)
				next = append(next, c.keys...)
			case isNoScript(err):
				// Redis restarted or flushed its scripts: load them again.
				if lerr := r.load(ctx); lerr != nil {
					return nil, lerr
				}
				return nil, err
			default:
				return nil, err
			}
		}
		todo = next
	}
	return out, nil
}

// plan cuts the keys to read (indexes into keys) into script calls: one
// per key for those marked alone, and otherwise groups of at most pageKeys
// keys — by cluster slot when the server is a cluster's, since a script's
// keys must share a slot there. A group of one key is read with
// readScript.
func (r *Reader) plan(keys []string, todo []int, alone []bool) []readCall {
	var calls []readCall
	groups := map[int]int{} // slot (or 0) → index in calls of the open group
	bySlot := r.bySlot.Load()
	for _, i := range todo {
		if alone[i] {
			calls = append(calls, readCall{keys: []int{i}, single: true})
			continue
		}
		slot := 0
		if bySlot {
			slot = pipeline.RedisSlot([]byte(keys[i]))
		}
		g, ok := groups[slot]
		if !ok || len(calls[g].keys) == pageKeys {
			g = len(calls)
			groups[slot] = g
			calls = append(calls, readCall{})
		}
		calls[g].keys = append(calls[g].keys, i)
	}
	for i := range calls {
		calls[i].single = calls[i].single || len(calls[i].keys) == 1
	}
	return calls
}

// evalPage sends pageScript on the keys at idx through c (a pipeline).
func (r *Reader) evalPage(ctx context.Context, c goredis.Scripter, keys []string, idx []int) *goredis.Cmd {
	names := make([]string, len(idx))
	for j, i := range idx {
		names[j] = keys[i]
	}
	return pageScript.EvalSha(ctx, c, names, r.types, r.opts.MaxElements, r.opts.MaxValueBytes,
		r.opts.ChunkElements, r.opts.ChunkBytes, r.wholeString(), r.pageBytes)
}

// evalRead sends readScript on one key through c (a pipeline).
func (r *Reader) evalRead(ctx context.Context, c goredis.Scripter, key string) *goredis.Cmd {
	return readScript.EvalSha(ctx, c, []string{key}, r.types, r.opts.MaxElements, r.opts.MaxValueBytes,
		r.opts.ChunkElements, r.opts.ChunkBytes, r.wholeString())
}

// load loads both read scripts into the server's script cache (every
// master's, through a cluster client).
func (r *Reader) load(ctx context.Context) error {
	if err := readScript.Load(ctx, r.cl).Err(); err != nil {
		return err
	}
	return pageScript.Load(ctx, r.cl).Err()
}

// isTryAgain reports whether err refuses a multi-key command on a slot in
// migration because only some of its keys are still on this node.
func isTryAgain(err error) bool { return strings.HasPrefix(err.Error(), "TRYAGAIN") }

// isCrossSlot reports whether err refuses a script whose keys are in more
// than one cluster slot.
func isCrossSlot(err error) bool { return strings.HasPrefix(err.Error(), "CROSSSLOT") }
