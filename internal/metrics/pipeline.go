package metrics

import "github.com/prometheus/client_golang/prometheus"

// Metric is one metric of the pipeline commands: its description and
// its type, declared together so that the value a collector sends and the
// metrics reference (cutover dev gen-docs) agree.
type Metric struct {
	// Name is the full name (cutover_…), Help its meaning, Labels the
	// names of its labels.
	Name, Help string
	Labels     []string
	// Kind is prometheus.CounterValue or prometheus.GaugeValue.
	Kind prometheus.ValueType
	desc *prometheus.Desc
}

// Pipeline lists the pipeline commands' metrics, in the order declared.
var Pipeline []*Metric

func declare(kind prometheus.ValueType, name, help string, labels ...string) *Metric {
	m := &Metric{Name: "cutover_" + name, Help: help, Labels: labels, Kind: kind,
		desc: prometheus.NewDesc("cutover_"+name, help, labels, nil)}
	Pipeline = append(Pipeline, m)
	return m
}

func counter(name, help string, labels ...string) *Metric {
	return declare(prometheus.CounterValue, name, help, labels...)
}

func gauge(name, help string, labels ...string) *Metric {
	return declare(prometheus.GaugeValue, name, help, labels...)
}

// Desc is the metric's description, for a collector's Describe.
func (m *Metric) Desc() *prometheus.Desc { return m.desc }

// Value is the metric's sample of v, with the values of its labels.
func (m *Metric) Value(v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(m.desc, m.Kind, v, labels...)
}

// The metrics of the pipeline commands. Each is sent by the stage that
// counts it, once that stage runs.
var (
	SnapshotScanned   = counter("snapshot_keys_scanned_total", "Keys the Redis snapshot scanned.")
	SnapshotKeys      = gauge("snapshot_keys", "Keys in the source when the snapshot started (DBSIZE).")
	SnapshotDone      = gauge("snapshot_done", "1 once every node's snapshot is published.")
	LiveNotifications = counter("live_notifications_total", "Keyspace notifications received.")
	LiveEvents        = counter("live_events_total", "Events published by live capture.")
	LiveGaps          = counter("live_gaps_total", "Gaps detected in notification capture.")
	LiveHeals         = counter("live_heals_total", "Gaps healed by a re-read.")
	LiveDirty         = gauge("live_dirty_keys", "Keys changed and waiting to be read.")
	MastersChanged    = counter("source_masters_changed_total", "Changes of the Redis source's masters followed (a Sentinel or cluster failover, a resharding), each in a new version epoch.")
	TableItems        = counter("table_items_scanned_total", "Items the DynamoDB source's Scan read.")
	TableTotal        = gauge("table_items", "Items in the source table, as DynamoDB reports (updated about every 6 hours).")
	StreamRecords     = counter("stream_records_total", "DynamoDB stream records read.")
	StreamAge         = gauge("stream_age_seconds", "Age of the newest stream record read.")
	StreamHeals       = counter("stream_gaps_healed_total", "DynamoDB stream gaps (trimmed records) healed by a re-scan.")
	Published         = counter("events_published_total", "Events acknowledged by Kafka, by operation (upsert, delete, truncate: one per partition it is copied to).", "op")
	DeadLettered      = counter("dead_lettered_total", "Records sent to the dead-letter topic.")
	SinkApplied       = counter("sink_applied_total", "Events applied to the target, by operation (upsert, delete, truncate).", "op")
	SinkSkipped       = counter("sink_skipped_older_total", "Events skipped because the target held that version or a newer one, by operation.", "op")
	SinkWrites        = counter("sink_writes_total", "Writes made to the target.")
	SinkThrottles     = counter("sink_throttles_total", "Writes the target throttled (retried).")
	SinkRetries       = counter("sink_retries_total", "Writes retried after a transient error.")
	SinkRateLimit     = gauge("sink_rate_limit", "Current adaptive write-rate limit in writes/s (0: none).")
	SinkPaused        = gauge("sink_fetch_paused", "1 while fetching from Kafka is paused for a throttling target.")
	SinkConcurrency   = gauge("sink_concurrency", "Sink calls the worker may have in flight now (adapted below the configured ceiling).")
	SinkLag           = gauge("sink_lag_records", "Records published but not yet applied (backfill and replay).")
	ConsumerLag       = gauge("consumer_lag_records", "Records in the topic beyond the consumer group's committed offset, per partition.", "partition")
	CheckpointAge     = gauge("checkpoint_age_seconds", "Time since each of the pipeline's checkpoints was saved.", "checkpoint")
)

// NewLagHistogram is the end-to-end lag: from the source's read of a
// key to the sink's apply of that read, 1 ms to about 9 hours.
func NewLagHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cutover_end_to_end_lag_seconds",
		Help:    "Time from the source's read of a key to the target's apply of it (snapshot reads included: during a backfill this is the backfill's age).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 25),
	})
}
