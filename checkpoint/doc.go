// Package checkpoint saves and loads source positions: a Redis SCAN cursor
// per node, a DynamoDB Scan segment's LastEvaluatedKey, a stream shard's
// sequence number.
//
// A position is opaque bytes owned by the source that wrote it. A source
// saves a position only after Kafka has acknowledged every event read
// before it (see pipeline/kafka.Publisher), so restarting from a saved
// position can repeat events but never skip one. Sinks do not use this
// package: a sink's position is its consumer group's committed offset.
//
// Store is the interface; FileStore, the default, keeps one file per name
// in a directory and replaces it atomically (temp file, fsync, rename,
// fsync of the directory), so a crash leaves either the old position or
// the new one, never a torn file.
package checkpoint
