package kafka

import "errors"

// ErrPartitionsChanged means the event topic no longer has the partitions
// a Publisher has been sending keys to: it was deleted and created again
// with fewer. Restarting cutover picks up the topic as it is now.
var ErrPartitionsChanged = errors.New("the topic's partitions changed")

// ErrNotDrained means Drain ended (its context's deadline passed, or it
// was stopped) before the sink group had applied every barrier: its
// DrainStatus says which partitions are behind and who owns them.
var ErrNotDrained = errors.New("not drained")
