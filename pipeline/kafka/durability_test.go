package kafka

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A topic of one replica is warned about, with its replication factor.
func TestCheckDurability(t *testing.T) {
	cl, ctx := eventsCluster(t)
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	CheckDurability(ctx, cl, "events", log)
	if !strings.Contains(out.String(), "the topic has one replica") || !strings.Contains(out.String(), "replication_factor=1") {
		t.Errorf("one replica:\n%s", out.String())
	}
}
