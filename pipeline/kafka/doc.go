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
package kafka
