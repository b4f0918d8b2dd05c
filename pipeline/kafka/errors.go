package kafka

import "errors"

// ErrPartitionsChanged means the event topic no longer has the partitions
// a Publisher has been sending keys to: it was deleted and created again
// with fewer. Restarting cutover picks up the topic as it is now.
var ErrPartitionsChanged = errors.New("the topic's partitions changed")
