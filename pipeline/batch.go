package pipeline

// Batch is what a source hands to the transport in one call: the events
// read from one page of the source, and the keys of that page that cannot
// become events. Nothing a source reads may vanish: every key is either an
// event or a Reject, and a Reject is written to the dead-letter topic.
type Batch struct {
	Events  []Event
	Rejects []Reject
}

// Reject is a key a source read but cannot publish.
type Reject struct {
	Key []byte
	// Class is a stable word for the reason: one of the Reject…
	// constants.
	Class string
	// Err says what is wrong and what to do about it.
	Err error
	// Size is the size of the value in bytes or elements, when known.
	Size int64
}

// Reject classes written by sources.
const (
	// RejectOversize: the event does not fit in one Kafka record.
	RejectOversize = "oversize"
	// RejectUnsupportedType: a Redis type cutover does not carry.
	RejectUnsupportedType = "unsupported-type"
	// RejectBigKey: a value over the configured size limits.
	RejectBigKey = "big-key"
	// RejectUnreadable: the source's user may not read the key (ACL).
	RejectUnreadable = "unreadable"
	// RejectInvalid: the event failed Event.Validate.
	RejectInvalid = "invalid"
)
