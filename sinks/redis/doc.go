// Package redis is cutover's Redis sink.
//
//	Kafka ──▶ pipeline/kafka.Worker ──Apply(batch)──▶ Sink ──pipelined EVALSHA──▶ Redis (or Redis Cluster)
//
// Every event is applied by one Lua script that compares the event's
// version with the key's stored version and writes only if the event is
// newer, atomically. The version lives in a companion key,
// "cutover:v:{tag}<key>", whose hash tag puts it in the data key's slot so
// the script works on Redis Cluster. A whole value replaces the key (DEL,
// then the typed writes, then PEXPIREAT for the absolute expiry), so
// applying an event twice changes nothing. A delete removes the data key
// and keeps the version key: the tombstone that stops an older upsert from
// bringing the key back. Version keys expire after TombstoneRetention.
//
// A big key arrives in chunks of one version: the first replaces the
// value, each later one adds its elements only while the key still holds
// that version (list, string and stream pieces also check their offset,
// so a replayed piece is not added twice). A stream's entries are added
// with their own IDs; its last ID, counters and consumer groups are set
// with its last piece (the target's groups become exactly the source's). A
// later piece the server or the sink rejects is followed by a delete just
// after the pieces' version: all pieces of a key land, or none do.
//
// Writes are pipelined; keys are spread over Concurrency pipelines by hash
// so a key's events stay in order. The sink owns retries: OOM, LOADING,
// BUSY (not BUSYGROUP or BUSYKEY), failovers and lost connections are retried with backoff until they
// pass or the worker stops; a value the server refuses is Rejected.
package redis
