package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
)

// runTableReplicate is runReplicate for a DynamoDB source: the table's
// snapshot (a parallel Scan) and its stream, published to Kafka and, unless
// mode.noSink, applied by a sink worker in this process.
func runTableReplicate(ctx context.Context, cfg *Config, mode replicateMode, what string, out io.Writer) error {
	log := newLogger(cfg)
	start := time.Now()
	withSink := !mode.noSink
	w, err := connect(ctx, cfg, log, parts{source: true, publisher: true, sink: withSink, worker: withSink,
		instanceID: "cutover-" + cfg.Name + "-inprocess"})
	if err != nil {
		return err
	}
	defer w.close()
	d := cfg.Source.DynamoDB
	scan := ddbsrc.ScanOptions{Name: cfg.Name, Segments: d.Segments, PageSize: d.PageSize, ConsistentRead: d.ConsistentRead,
		ReadCapacityPerSecond: d.ReadCapacityPerSecond, Endpoint: d.Endpoint, Logger: log}
	stream := ddbsrc.StreamOptions{Name: cfg.Name, Endpoint: d.Endpoint, Logger: log}
	src, err := ddbsrc.NewSource(w.ddb, w.dstreams, *w.dtable, scan, stream,
		ddbsrc.Mode{SnapshotOnly: mode.snapshotOnly, LiveOnly: mode.liveOnly, Restart: mode.restart}, w.pub, w.store)
	if err != nil {
		return err
	}
	log.Info("source table", "table", d.Table, "partition_key", w.dtable.Partition, "sort_key", w.dtable.Sort,
		"stream_view", w.dtable.StreamView, "ttl_attribute", w.dtable.TTLAttribute)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	srcErr := make(chan error, 1)
	go func() { srcErr <- src.Run(ctx) }()
	var workerErr <-chan error
	if withSink {
		workerErr = w.runWorker(ctx)
	}
	rep := newReporter(w, nil, start)
	rep.table = src
	go tick(ctx, cfg.ProgressInterval, rep.log)
	go rep.snapshotBar(ctx)

	stop := func(first error) error {
		cancel(first)
		if err := <-srcErr; err != nil && first == nil && !errors.Is(err, context.Canceled) {
			first = err
		}
		return w.finish(workerErr, first)
	}
	if err := w.serveMetrics(ctx, rep); err != nil {
		return stop(err)
	}
	if mode.snapshotOnly {
		select {
		case err := <-srcErr:
			srcErr <- nil // stop reads it again
			if err != nil {
				return stop(err)
			}
		case err := <-workerErr:
			workerErr = nil
			return stop(fmt.Errorf("sink worker stopped: %w", err))
		case <-ctx.Done():
			return stop(fmt.Errorf("interrupted: %w (run the same command again to resume)", context.Cause(ctx)))
		}
		if withSink {
			end, err := w.waitApplied(ctx, workerErr)
			rep.setEnd(end)
			if err != nil {
				return stop(err)
			}
		}
		if err := stop(nil); err != nil {
			return err
		}
		return rep.summary(out, what, time.Since(start))
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-srcErr:
		srcErr <- nil
		runErr = err
		if runErr == nil {
			runErr = errors.New("the source stopped by itself")
		}
	case err := <-workerErr:
		workerErr = nil
		runErr = fmt.Errorf("sink worker stopped: %w", err)
	}
	if err := stop(runErr); err != nil {
		return err
	}
	log.Info("replicate stopped")
	return rep.summary(out, what, time.Since(start))
}
