package checkpoint

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// MemoryStore keeps positions in memory. For tests, and for runs that
// deliberately keep no state (`--checkpoint-dir ""` is not offered: a
// backfill that cannot resume must be asked for).
type MemoryStore struct {
	mu sync.Mutex
	m  map[string][]byte
	// Saves counts successful saves, for tests.
	Saves int
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string][]byte{}} }

// Load implements Store.
func (s *MemoryStore) Load(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return append([]byte(nil), b...), nil
}

// Save implements Store.
func (s *MemoryStore) Save(_ context.Context, name string, pos []byte) error {
	if err := ValidName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = append([]byte(nil), pos...)
	s.Saves++
	return nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, name)
	return nil
}

// List implements Store.
func (s *MemoryStore) List(_ context.Context, prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for k := range s.m {
		if strings.HasPrefix(k, prefix) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names, nil
}
