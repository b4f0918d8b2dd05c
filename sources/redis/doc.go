// Package redis is cutover's Redis source.
//
//	Redis ──SCAN──▶ keys ──pipelined EVALSHA (TIME+TYPE+PTTL+value, atomic)──▶ events
//	                                                                              │
//	        checkpoint ◀── cursor, once Kafka acked the page ◀── Publisher ◀──────┘
//
// Snapshot walks one logical database with SCAN. Each page of keys is read
// with one pipelined round trip of a small Lua script per key, which
// returns the server's TIME, the key's type, its PTTL and its value in one
// atomic step: the time is the read's version (pipeline.ClockVersion), so a
// sink can tell an older read of a key from a newer one however they race.
//
// Pages are read by several goroutines but published in SCAN order, and the
// SCAN cursor is saved to the checkpoint store only once Kafka acknowledged
// every event of the pages before it. A restarted snapshot continues from
// the saved cursor; SCAN guarantees that every key present for the whole
// walk is returned at least once, so none is skipped.
//
// Streams are read with their entries, last ID, counters and consumer
// groups (XRANGE and XINFO in the same script) while their entries'
// encoded size, measured entry by entry, fits in ChunkBytes; a bigger one
// in pieces by ID.
//
// Keys that cannot become events — a type cutover does not carry (module
// types), a collection larger than MaxElements, a string larger than
// MaxValueBytes — are rejected into the dead-letter topic, never dropped.
package redis
