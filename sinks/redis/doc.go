// Package redis is cutover's Redis sink.
//
//	Kafka ──▶ pipeline/kafka.Worker ──Apply(batch)──▶ Sink ──pipelined EVALSHA, many events each──▶ Redis (or Redis Cluster)
//
// Events are applied by a Lua script, many per call: for each event it
// compares the event's version with the key's stored version and writes
// only if the event is newer, atomically. Versions live in hashes, version
// buckets, one (or Options.VersionBuckets) per hash slot, named
// "cutover:v:b{tag}" with a hash tag in the slot of the keys they hold, so
// a call's keys share a slot on Redis Cluster; the field is the data key.
// A small hash is packed by Redis, so a version costs about its key's name
// and 15 bytes rather than a key of its own (versions.go). A whole value
// replaces the key (DEL, then the typed writes, then PEXPIREAT for the
// absolute expiry), so applying an event twice changes nothing. A delete
// removes the data key and keeps its version with a deadline: the
// tombstone that stops an older upsert from bringing the key back, for
// TombstoneRetention (a value with an expiry keeps its version that long
// past its expiry). The script drops entries past their deadline when a
// bucket grows to a power of two. Every key a call touches is declared in
// its KEYS. Targets written before buckets (a version key per key) are
// read through and moved key by key.
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
// Script calls of up to 128 events are pipelined; keys are spread over
// Concurrency pipelines by hash so a key's events stay in order, and on a
// cluster a call holds the events of one slot. The sink owns retries: OOM, LOADING,
// BUSY (not BUSYGROUP or BUSYKEY), failovers and lost connections are retried with backoff until they
// pass or the worker stops; a value the server refuses is Rejected.
package redis
