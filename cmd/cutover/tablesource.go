package main

import (
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
)

// tableSource is the DynamoDB source of a replicate or backfill: the
// table's snapshot (a parallel Scan) and its stream.
func (w *wiring) tableSource(mode replicateMode) (*ddbsrc.Source, error) {
	cfg, log := w.cfg, w.log
	d := cfg.Source.DynamoDB
	scan := ddbsrc.ScanOptions{Name: cfg.Name, Segments: d.Segments, PageSize: d.PageSize, ConsistentRead: d.ConsistentRead,
		ReadCapacityPerSecond: d.ReadCapacityPerSecond, Endpoint: d.Endpoint, Logger: log}
	stream := ddbsrc.StreamOptions{Name: cfg.Name, Endpoint: d.Endpoint, Logger: log}
	src, err := ddbsrc.NewSource(w.ddb, w.dstreams, *w.dtable, scan, stream,
		ddbsrc.Mode{SnapshotOnly: mode.snapshotOnly, LiveOnly: mode.liveOnly, Restart: mode.restart}, w.pub, w.store)
	if err != nil {
		return nil, err
	}
	log.Info("source table", "table", d.Table, "partition_key", w.dtable.Partition, "sort_key", w.dtable.Sort,
		"stream_view", w.dtable.StreamView, "ttl_attribute", w.dtable.TTLAttribute)
	return src, nil
}
