package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// The product binary links no test code: the demo's seeder and the fault
// proxy are test/cmd/cutover-dev.
func TestBinaryHoldsNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/cutover/cutover/test/") || strings.Contains(pkg, "/sinktest") {
			t.Errorf("cmd/cutover imports %s, test code", pkg)
		}
	}
}

// A stop signal that lands while replicate or sink is still connecting is
// a clean stop (exit 0), not a failure; other errors stay errors.
func TestStoppedWhileStarting(t *testing.T) {
	stopped, stop := context.WithCancel(context.Background())
	stop()
	startupErr := fmt.Errorf("describe configs of topic t: %w", context.Canceled)
	if err := stoppedWhileStarting(stopped, startupErr); err != nil {
		t.Errorf("stopped while starting: got %v, want a clean stop", err)
	}
	if err := stoppedWhileStarting(context.Background(), startupErr); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled without a stop signal: got %v, want the error", err)
	}
	other := errors.New("kafka unreachable")
	if err := stoppedWhileStarting(stopped, other); !errors.Is(err, other) {
		t.Errorf("other error after a stop signal: got %v, want it kept", err)
	}
}
