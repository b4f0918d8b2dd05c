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
	// Class is a stable word for the reason: "oversize",
	// "unsupported-type", "big-key".
	Class string
	// Err says what is wrong and what to do about it.
	Err error
	// Size is the size of the value in bytes or elements, when known.
	Size int64
}

// Reject classes written by sources.
const (
	RejectOversize        = "oversize"
	RejectUnsupportedType = "unsupported-type"
	RejectBigKey          = "big-key"
)
