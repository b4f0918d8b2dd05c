// Package kafka is cutover's transport: it publishes events to a Kafka
// topic and runs sink workers that consume them, on github.com/twmb/franz-go.
//
//	source ──Publish──▶ Publisher ──▶ topic ──▶ Worker ──Apply──▶ Sink
//	   ▲                   │                       │
//	   └── onDurable ◀─────┘ (all earlier acked)   └── commit offsets after Apply
//	       (source saves its checkpoint)               (rejected → dead-letter topic)
//
// Publisher guarantees that a source's position is reported durable only
// after Kafka acknowledged (acks=all, idempotent producer) every event
// published before it, so a source restarted from its checkpoint repeats
// events but never skips one.
//
// Worker guarantees that an offset is committed only after every record
// before it was applied, skipped as older, or written to the dead-letter
// topic, so a crash at any moment loses nothing: uncommitted records are
// applied again, and versioned apply makes that harmless.
//
// One record never stops either of them: an event that is not valid or
// too large, a record that cannot be decoded or applied, becomes a dead
// letter, and a dead letter is always made small enough to be written
// (its value is left out when it would be too large). Only failures of
// the pipeline itself — Kafka unreachable, a topic refusing writes, a
// target failing — stop a Publisher or a Worker.
package kafka
