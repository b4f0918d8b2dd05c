package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/kafka"
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
	redissrc "github.com/cutover/cutover/sources/redis"
)

// repairer carries reconcile's repairs through the pipeline: it publishes
// them to the pipeline's topic (ordered with live changes of the same
// key) and waits until the consumer group has committed past them. When
// no sink worker is in the group, it runs one itself meanwhile.
type repairer struct {
	wr      *wiring
	timeout time.Duration
	mu      sync.Mutex
	marked  bool // markWritten was done
}

// Repair implements reconcile.Repairer.
func (r *repairer) Repair(ctx context.Context, events []pipeline.Event) error {
	r.mu.Lock()
	if !r.marked {
		// Before the first repair reaches the target: the next source run
		// must know the pipeline wrote there.
		if err := r.wr.markWritten(ctx); err != nil {
			r.mu.Unlock()
			return fmt.Errorf("record that reconcile writes to the target: %w", err)
		}
		r.marked = true
	}
	r.mu.Unlock()
	for i := range events {
		events[i].Source.Connector = "reconcile"
	}
	return r.wr.pub.Publish(ctx, pipeline.Batch{Events: events}, nil)
}

// markWritten records, in the source's checkpoint, that the pipeline
// wrote to its target (see redissrc.MarkWritten, ddbsrc.MarkWritten).
func (w *wiring) markWritten(ctx context.Context) error {
	if w.cfg.SourceKind() == "dynamodb" {
		return ddbsrc.MarkWritten(ctx, w.store, w.cfg.Name, w.dtable.Name)
	}
	return redissrc.MarkWritten(ctx, w.store, w.cfg.Name)
}

// Wait implements reconcile.Repairer.
func (r *repairer) Wait(ctx context.Context) error {
	wr, cfg := r.wr, r.wr.cfg
	if err := wr.pub.Flush(ctx); err != nil {
		return err
	}
	end, err := kafka.EndOffsets(ctx, wr.pcl, cfg.Kafka.Topic)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	workerErr := make(chan error, 1)
	started := false
	// start runs a worker in this process once the group has no member
	// (a crashed static member counts until its session times out).
	start := func() error {
		members, err := kafka.GroupMembers(ctx, wr.pcl, cfg.Kafka.Group)
		if err != nil || len(members) > 0 {
			return err
		}
		wr.log.Info("no sink worker is running: applying the repairs in this process", "group", cfg.Kafka.Group)
		if err := wr.connectWorker(ctx, ""); err != nil {
			return err
		}
		started = true
		go func() { workerErr <- wr.worker.Run(ctx) }()
		return nil
	}
	defer func() {
		if started {
			cancel()
			<-workerErr //nolint:errcheck // stopped on purpose: its error is ctx's
			wr.closeWorker()
		}
	}()
	// poll starts the worker when it is needed, and notices that it
	// stopped.
	poll := func(context.Context) error {
		if !started {
			return start()
		}
		select {
		case err := <-workerErr:
			started = false
			wr.closeWorker()
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("the sink worker applying the repairs stopped: %w", err)
		default:
			return nil
		}
	}
	behind, err := kafka.WaitCommitted(ctx, wr.pcl, cfg.Kafka.Group, cfg.Kafka.Topic, end, 500*time.Millisecond, poll)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("the consumer group %s did not commit past the repairs within %s (partitions still behind: %v): are its sink workers running and keeping up? Raise --repair-timeout or check `cutover replicate`/`cutover sink`",
			cfg.Kafka.Group, r.timeout, behind)
	}
	return err
}
