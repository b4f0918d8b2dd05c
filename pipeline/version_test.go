package pipeline

import (
	"errors"
	"sync"
	"testing"
)

// TestEpochAdvanceSavesBeforeUse: a reader must never see an epoch that
// a restart would not know. Before the fix, Bump made the new epoch
// visible at once and the caller saved it afterwards; a crash in between
// published versions of an epoch the next run started below.
func TestEpochAdvanceSavesBeforeUse(t *testing.T) {
	e := NewEpoch(4)
	var sawDuringSave uint64
	got, err := e.Advance(func(next uint64) error {
		sawDuringSave = e.Load()
		if next != 5 {
			t.Errorf("save got %d, want 5", next)
		}
		return nil
	})
	if err != nil || got != 5 || e.Load() != 5 {
		t.Fatalf("Advance = %d, %v; Load = %d; want 5", got, err, e.Load())
	}
	if sawDuringSave != 4 {
		t.Errorf("readers saw epoch %d while it was being saved, want the old one, 4", sawDuringSave)
	}
	if _, err := e.Advance(func(uint64) error { return errors.New("disk full") }); err == nil || e.Load() != 5 {
		t.Errorf("a failed save must leave the epoch at 5: got %d, %v", e.Load(), err)
	}
}

func TestEpochAdvanceConcurrent(t *testing.T) {
	e := NewEpoch(0)
	var mu sync.Mutex
	saved := map[uint64]bool{}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.Advance(func(n uint64) error {
				mu.Lock()
				defer mu.Unlock()
				if saved[n] {
					t.Errorf("epoch %d saved twice", n)
				}
				saved[n] = true
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if e.Load() != 50 || len(saved) != 50 {
		t.Errorf("after 50 advances: epoch %d, %d saved", e.Load(), len(saved))
	}
}
