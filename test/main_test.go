package test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cutover/cutover/test/stack"
)

// TestMain deletes the topics a passing run created, so that the local
// stack's broker does not grow run after run (a failing run keeps them,
// to look at).
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := stack.DeleteOwnTopics(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "warning: the topics of this run stay on the local stack's Kafka: %v\n", err)
		}
		cancel()
	}
	os.Exit(code)
}
