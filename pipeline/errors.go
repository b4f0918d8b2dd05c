package pipeline

import "errors"

var (
	// ErrInvalidEvent means an event breaks the contract of Event.Validate.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrDecode means a Kafka record is not a cutover event this version
	// can read. Such a record is dead-lettered, never dropped silently.
	ErrDecode = errors.New("cannot decode event")
	// ErrUnmappable means a value cannot be written to the target as
	// configured (a binary key into a string key attribute, an item over
	// the target's size limit). Retrying cannot help; the event is
	// dead-lettered.
	ErrUnmappable = errors.New("value cannot be mapped to the target")
)
