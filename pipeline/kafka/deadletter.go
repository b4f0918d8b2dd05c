package kafka

import (
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers of a dead-letter record. The record's key is the original key
// and its value the original record value when there was one (a source
// dead-letters a value too large for Kafka with an empty value).
const (
	// HeaderError is the error, in words.
	HeaderError = "cutover.error"
	// HeaderErrorClass is a stable word for the kind of error: from a
	// source "oversize", "unsupported-type", "big-key" (pipeline.Reject*);
	// from a sink "decode", "unmappable", "target-rejected".
	HeaderErrorClass = "cutover.error.class"
	// HeaderStage is "source" or "sink".
	HeaderStage = "cutover.stage"
	// HeaderTime is when the record was dead-lettered, RFC 3339.
	HeaderTime = "cutover.time"
	// HeaderTopic, HeaderPartition and HeaderOffset locate the original
	// record (sink stage only).
	HeaderTopic     = "cutover.topic"
	HeaderPartition = "cutover.partition"
	HeaderOffset    = "cutover.offset"
	// HeaderValueSize is the size of a value that was too large to carry.
	HeaderValueSize = "cutover.value.size"
	// HeaderContentType is set on every event record.
	HeaderContentType = "content-type"
)

// Error classes written to HeaderErrorClass.
const (
	ClassDecode         = "decode"
	ClassUnmappable     = "unmappable"
	ClassTargetRejected = "target-rejected"
)

func header(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }

// sinkDeadLetter wraps a consumed record that could not be applied.
func sinkDeadLetter(topic string, r *kgo.Record, class string, err error, now time.Time) *kgo.Record {
	return &kgo.Record{
		Topic: topic,
		Key:   r.Key,
		Value: r.Value,
		Headers: append(append([]kgo.RecordHeader(nil), r.Headers...),
			header(HeaderError, err.Error()),
			header(HeaderErrorClass, class),
			header(HeaderStage, "sink"),
			header(HeaderTime, now.UTC().Format(time.RFC3339Nano)),
			header(HeaderTopic, r.Topic),
			header(HeaderPartition, strconv.FormatInt(int64(r.Partition), 10)),
			header(HeaderOffset, strconv.FormatInt(r.Offset, 10)),
		),
	}
}

// sourceDeadLetter records an event the source could not publish.
func sourceDeadLetter(topic string, key []byte, size int64, class string, err error, now time.Time) *kgo.Record {
	return &kgo.Record{
		Topic: topic,
		Key:   key,
		Headers: []kgo.RecordHeader{
			header(HeaderError, err.Error()),
			header(HeaderErrorClass, class),
			header(HeaderStage, "source"),
			header(HeaderTime, now.UTC().Format(time.RFC3339Nano)),
			header(HeaderValueSize, strconv.FormatInt(size, 10)),
		},
	}
}
