package main

import (
	"context"
	"io"
	"time"

	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
)

// runTableReplicate is runReplicate for a DynamoDB source: the table's
// snapshot (a parallel Scan) and its stream, published to Kafka and, unless
// mode.noSink, applied by a sink worker in this process.
func runTableReplicate(ctx context.Context, cfg *Config, mode replicateMode, what string, out io.Writer) error {
	log := setup(cfg)
	start := time.Now()
	w, err := connect(ctx, cfg, log, parts{source: true, publisher: true, sink: !mode.noSink, worker: !mode.noSink,
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

	rep := newReporter(w, start)
	rep.table = src
	return w.runSource(ctx, src, mode, what, out, rep)
}
