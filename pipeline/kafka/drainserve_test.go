package kafka

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/pipeline"
)

// drainedSource has handed over everything it saw, always.
type drainedSource struct{}

func (drainedSource) Drained(context.Context) error { return nil }

// The drain server creates the missing control topic, answers a drain,
// and its wait returns once its context ended.
func TestStartDrainServerCreatesTheControlTopicAndAnswers(t *testing.T) {
	cfg := fakeCluster(t, "events", "events.dlq")
	p := newTestPublisher(t, cfg)
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	wait := StartDrainServer(serveCtx, mustConnect(t, cfg), cfg, p, drainedSource{}, DrainServerOptions{Topic: "events", ReplicationFactor: 1, Logger: log})
	if wait == nil {
		t.Fatalf("not serving: %s", logged.String())
	}
	if !strings.Contains(logged.String(), "created topic") {
		t.Errorf("the control topic was not created: %s", logged.String())
	}

	sink := &memSink{store: map[string]pipeline.Event{}}
	_, stop := runWorker(t, cfg, WorkerOptions{Topic: "events", Group: "g", DeadLetterTopic: "events.dlq"}, sink)
	defer func() { _ = stop() }()
	st, err := Drain(ctxT(t), cfg, DrainOptions{Topic: "events", Group: "g", ResendEvery: 100 * time.Millisecond, CheckEvery: 50 * time.Millisecond})
	if err != nil || !st.Done {
		t.Fatalf("drain %+v, %v", st, err)
	}
	stopServing()
	wait()
}
