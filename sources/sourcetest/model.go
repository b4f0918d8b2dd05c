package sourcetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cutover/cutover/pipeline"
)

// entry is what the model target holds for one key.
type entry struct {
	raw     []byte // the event key, for a truncate's scope
	version pipeline.Version
	value   string
	deleted bool
}

// target is a sink in memory that applies events as every sink must:
// an event older than what the key holds changes nothing, a delete leaves
// a tombstone, a truncate removes the keys of its scope older than it.
type target struct {
	subject *Subject
	mu      sync.Mutex
	keys    map[string]*entry
}

func newTarget(s *Subject) *target { return &target{subject: s, keys: map[string]*entry{}} }

// targetAfter is a new target that applied logs, one after the other.
func targetAfter(s *Subject, logs ...[]pipeline.Event) *target {
	m := newTarget(s)
	for _, events := range logs {
		m.apply(events)
	}
	return m
}

func (m *target) apply(events []pipeline.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range events {
		if e.Op == pipeline.OpTruncate {
			for k, cur := range m.keys {
				if !cur.deleted && e.Version.Newer(cur.version) && e.Scope.Covers(cur.raw) {
					delete(m.keys, k)
				}
			}
			continue
		}
		k := m.subject.Key(e)
		if cur := m.keys[k]; cur != nil && !e.Version.Newer(cur.version) {
			continue
		}
		n := &entry{raw: e.Key, version: e.Version, deleted: e.Op == pipeline.OpDelete}
		if !n.deleted {
			n.value = m.subject.Value(e)
		}
		m.keys[k] = n
	}
}

// diff describes how the model differs from want (key → value), or
// returns "" when it holds exactly want.
func (m *target) diff(want map[string]string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k, v := range want {
		switch cur := m.keys[k]; {
		case cur == nil || cur.deleted:
			out = append(out, fmt.Sprintf("%q missing", k))
		case cur.value != v:
			out = append(out, fmt.Sprintf("%q is %q, want %q", k, cur.value, v))
		}
	}
	for k, cur := range m.keys {
		if _, ok := want[k]; !ok && !cur.deleted {
			out = append(out, fmt.Sprintf("%q should be gone (holds %q)", k, cur.value))
		}
	}
	if len(out) == 0 {
		return ""
	}
	slices.Sort(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("and %d more", len(out)-10))
	}
	return strings.Join(out, "; ")
}
