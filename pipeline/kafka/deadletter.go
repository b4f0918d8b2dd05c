package kafka

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutover/cutover/pipeline"
)

// Headers of a dead-letter record. The record's key is the original key
// and its value the original record value when there was one (a source
// dead-letters a value too large for Kafka with an empty value). A dead
// letter that would be too large for the dead-letter topic leaves its
// value out (HeaderValueLeftOut says why) and, if need be, cuts its key
// (HeaderKeySize gives the whole key's length) and error text: a dead
// letter must always be writable, or one bad record would stop its worker.
const (
	// HeaderError is the error, in words.
	HeaderError = "cutover.error"
	// HeaderErrorClass is a stable word for the kind of error: from a
	// source "oversize", "unsupported-type", "big-key" (pipeline.Reject*),
	// "invalid"; from a sink "decode", "unmappable", "target-rejected".
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
	// HeaderValueLeftOut is set when the dead letter does not carry the
	// original value because it would have been too large; it says why.
	// The original record is still at HeaderTopic/Partition/Offset until
	// the topic's retention removes it.
	HeaderValueLeftOut = "cutover.value.left-out"
	// HeaderKeySize is set when the dead letter's key is only the first
	// bytes of the original key: the whole key's length.
	HeaderKeySize = "cutover.key.size"
	// HeaderContentType is set on every event record.
	HeaderContentType = "content-type"
)

// Error classes written to HeaderErrorClass.
const (
	ClassDecode         = "decode"
	ClassUnmappable     = "unmappable"
	ClassTargetRejected = "target-rejected"
	// ClassInvalid is an event a source built that fails
	// pipeline.Event.Validate: the publisher dead-letters it in place of
	// the event.
	ClassInvalid = pipeline.RejectInvalid
)

const (
	// minRecordBytes is the smallest record size limit honoured (as
	// kafka.max_record_bytes): room for a dead letter's headers, their
	// texts cut to a quarter of it, and the start of its key.
	minRecordBytes = 1 << 10
	// maxCutText bounds each header value of a dead letter that had to be
	// cut to fit, and maxCutKey its key when even that is not enough.
	maxCutText = 2 << 10
	maxCutKey  = 1 << 10
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

// sourceDeadLetter records an event the source could not publish; size is
// the value's size when known (0: not known).
func sourceDeadLetter(topic string, key []byte, size int64, class string, err error, now time.Time) *kgo.Record {
	r := &kgo.Record{
		Topic: topic,
		Key:   key,
		Headers: []kgo.RecordHeader{
			header(HeaderError, err.Error()),
			header(HeaderErrorClass, class),
			header(HeaderStage, "source"),
			header(HeaderTime, now.UTC().Format(time.RFC3339Nano)),
		},
	}
	if size > 0 {
		r.Headers = append(r.Headers, header(HeaderValueSize, strconv.FormatInt(size, 10)))
	}
	return r
}

// recordBytes bounds the size of r in a record batch of its own, as a
// broker measures it against max.message.bytes: the batch header (61
// bytes), the record's framing (its length, attributes, timestamp and
// offset deltas, key and value lengths, header count: at most 36 bytes),
// and two lengths per header (at most 10 bytes).
func recordBytes(r *kgo.Record) int {
	n := 61 + 36 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// fitDeadLetter returns r when it is at most limit bytes (recordBytes).
// Otherwise it returns a copy that leaves the value out, keeps only
// cutover's own headers (error texts cut to a few KiB), says what was
// left out, and keeps as much of the key as still fits; true says so.
func fitDeadLetter(r *kgo.Record, limit int) (*kgo.Record, bool) {
	size := recordBytes(r)
	if size <= limit {
		return r, false
	}
	return shrinkDeadLetter(r, size, limit, len(r.Key)), true
}

// minimalDeadLetter is r with its value left out and its key and texts
// cut short: a few KiB whatever r held, for a dead-letter topic that
// refused r at its full size.
func minimalDeadLetter(r *kgo.Record, refused error) *kgo.Record {
	out := shrinkDeadLetter(r, recordBytes(r), 0, maxCutKey)
	for i, h := range out.Headers {
		if h.Key == HeaderValueLeftOut {
			out.Headers[i].Value = cutText(fmt.Appendf(nil, "the dead-letter topic refused the %d-byte record: %v", recordBytes(r), refused), maxCutText)
		}
	}
	return out
}

func shrinkDeadLetter(r *kgo.Record, size, limit, maxKey int) *kgo.Record {
	out := &kgo.Record{Topic: r.Topic, Partition: r.Partition}
	textLimit := maxCutText
	if limit > 0 {
		textLimit = min(textLimit, limit/4)
	}
	for _, h := range r.Headers {
		if !strings.HasPrefix(h.Key, "cutover.") {
			continue // the original record's own headers
		}
		out.Headers = append(out.Headers, kgo.RecordHeader{Key: h.Key, Value: cutText(h.Value, textLimit)})
	}
	if len(r.Value) > 0 {
		out.Headers = append(out.Headers,
			header(HeaderValueSize, strconv.Itoa(len(r.Value))),
			header(HeaderValueLeftOut, fmt.Sprintf("the dead letter would be %d bytes, over the %d-byte limit for a dead letter", size, limit)))
	}
	key := r.Key
	n := maxKey
	if limit > 0 {
		n = min(n, max(limit-recordBytes(out)-len(HeaderKeySize)-30, 0))
	}
	if len(key) > n {
		out.Headers = append(out.Headers, header(HeaderKeySize, strconv.Itoa(len(key))))
		key = key[:n]
	}
	out.Key = key
	return out
}

// cutText keeps about the first limit bytes of a text, whole characters.
func cutText(b []byte, limit int) []byte {
	if len(b) <= limit {
		return b
	}
	n := limit
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return append(b[:n:n], " … (cut)"...)
}

// logKey is a key for a log line: whole unless it is very long.
func logKey(key []byte) string {
	if len(key) <= maxCutKey {
		return string(key)
	}
	return fmt.Sprintf("%s… (%d bytes)", key[:maxCutKey], len(key))
}

// logText is an error's text for a log line, cut when very long (an error
// may quote a huge key).
func logText(err error) string { return string(cutText([]byte(err.Error()), maxCutText)) }
