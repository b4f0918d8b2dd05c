package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A sink worker that stopped while waitApplied waited had its error taken
// by waitApplied; finish then read the channel again and waited forever,
// so backfill and replay hung instead of exiting with "sink stopped
// before applying everything". The second read must get nil at once.
func TestWorkerResultCanBeReadTwice(t *testing.T) {
	stopped := errors.New("worker stopped")
	errc := runAsync(t.Context(), func(context.Context) error { return stopped })
	if err := <-errc; !errors.Is(err, stopped) {
		t.Fatalf("first read: %v, want %v", err, stopped)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("second read: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a second read of the worker's result blocks: a command that read it once hangs at shutdown")
	}
}
