// Package dynamodb is cutover's DynamoDB sink.
//
//	Kafka ──▶ pipeline/kafka.Worker ──Apply(batch)──▶ Sink ──conditional PutItem──▶ table
//
// Every write is a PutItem conditioned on the item's version attribute:
//
//	attribute_not_exists(cutover_version) OR cutover_version < :version
//
// so an event older than (or equal to) what the table holds changes
// nothing and is reported SkippedOlder. A delete writes a tombstone — the
// key, the version, cutover_deleted = true and an expiry TombstoneRetention
// ahead — instead of removing the item, so a late, older upsert still
// loses the comparison and cannot bring the key back. The table's TTL on
// the expiry attribute purges tombstones afterwards.
//
// Within a batch, only the newest event of each key is written (the
// others could only lose the comparison), and different keys are written
// concurrently. The sink owns retries: throttling, 5xx and network errors
// are retried with exponential backoff and jitter until they succeed or the
// worker is stopped; the SDK's own retryer is off for these calls so the
// two never multiply. Errors that retrying cannot fix for this event (an
// item over 400 KB, a key that cannot be mapped) are Rejected results,
// which the worker dead-letters.
//
// The Redis-to-item mapping is documented on Mapping.
package dynamodb
