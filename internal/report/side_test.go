package report

import (
	"testing"
	"time"
)

func TestSidePercentAndETA(t *testing.T) {
	s := side{done: 250, total: 1000}
	if got := s.pct(); got != "25.0" {
		t.Errorf("pct = %q, want 25.0", got)
	}
	// 250 in 10 s is 25/s: 750 more take 30 s.
	if got := s.eta(10 * time.Second); got != 30*time.Second {
		t.Errorf("eta = %v, want 30s", got)
	}
	for _, s := range []side{{done: 0, total: 1000}, {done: 1000, total: 1000}, {done: 10, total: 20, finished: true}, {done: 10}} {
		if got := s.eta(10 * time.Second); got != 0 {
			t.Errorf("eta of %+v = %v, want none", s, got)
		}
	}
	if got := (side{done: 10}).pct(); got != "" {
		t.Errorf("pct of an unknown total = %q, want none", got)
	}
}
