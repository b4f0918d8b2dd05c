// Package pipeline defines what flows through cutover: the change Event, its
// typed Value, the Version that orders events of one key, and the Kafka wire
// format of an event.
//
// Data flows one way:
//
//	source (Redis SCAN/notifications, DynamoDB Scan/Streams, reconcile repair)
//	   │  pipeline.Event
//	   ▼
//	Kafka topic  (record key = source key, value = Encode(event))
//	   │  pipeline.Decode
//	   ▼
//	sink worker  (DynamoDB or Redis; applies if the version is newer)
//
// Every event carries a Version. Versions of the same key are totally
// ordered by bytes.Compare; a sink applies an event only when its version is
// greater than the one the target already holds for that key, so replays,
// duplicates and late snapshot reads can never move a key backwards.
//
// This package imports no source, sink or store SDK: it is the contract the
// stages share. The Kafka transport lives in pipeline/kafka.
package pipeline
