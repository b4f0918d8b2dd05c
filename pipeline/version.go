package pipeline

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
)

// Version orders the events of one key. Versions compare as byte strings
// (bytes.Compare): the greater one is the newer read. The encoding is
// order-preserving so that every store can compare versions without
// understanding them — DynamoDB compares a Binary attribute byte by byte,
// unsigned, in a condition expression; the Redis sink compares them in Lua.
//
// Every version starts with an 8-byte big-endian epoch. A source bumps the
// epoch when versions read afterwards cannot be compared with earlier ones
// (a Redis failover to a node with another clock, a DynamoDB re-snapshot
// after stream records were trimmed); everything read in a later epoch
// supersedes everything read in an earlier one. See docs/DESIGN.md.
type Version []byte

// Compare returns -1, 0 or +1 as v is older than, the same as, or newer
// than o.
func (v Version) Compare(o Version) int { return bytes.Compare(v, o) }

// Newer reports whether v is strictly newer than o.
func (v Version) Newer(o Version) bool { return bytes.Compare(v, o) > 0 }

// String is the lower-case hex form used in the wire format.
func (v Version) String() string { return hex.EncodeToString(v) }

// Next returns the smallest version newer than v: v with a zero byte
// appended. Every version that is newer than v and not made by Next
// from v is also newer than v.Next(), so a repair stamped with it wins
// over what the target holds and loses to any later change.
func (v Version) Next() Version {
	return append(append(make(Version, 0, len(v)+1), v...), 0)
}

// ParseVersion is the inverse of Version.String.
func ParseVersion(s string) (Version, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("version %q is not hex: %w", s, err)
	}
	return Version(b), nil
}

// ClockVersion is the version of a read stamped with the source's clock,
// as Redis reads are: epoch, the server's time in microseconds taken in the
// same atomic step as the read, and one bit that breaks a tie in favour of
// a live read over a snapshot read of the same microsecond (the live read
// was triggered by a write, so it cannot have seen an older state).
func ClockVersion(epoch, micros uint64, live bool) Version {
	v := make(Version, 16)
	binary.BigEndian.PutUint64(v[:8], epoch)
	t := micros << 1
	if live {
		t |= 1
	}
	binary.BigEndian.PutUint64(v[8:], t)
	return v
}

// SequenceVersion is the version of an event positioned by a decimal
// sequence number, as DynamoDB stream records are (21 to 40 digits, too
// many for a uint64). The number is stored as a length byte and its
// big-endian magnitude, so byte order is numeric order. Sequence "0" is
// the version of a snapshot row: older than every stream record of the same
// epoch (see docs/DESIGN.md for why that is correct).
func SequenceVersion(epoch uint64, seq string) (Version, error) {
	n, ok := new(big.Int).SetString(seq, 10)
	if !ok || n.Sign() < 0 {
		return nil, fmt.Errorf("sequence number %q is not a non-negative decimal integer", seq)
	}
	mag := n.Bytes()
	if len(mag) > 255 {
		return nil, fmt.Errorf("sequence number %q is too long", seq)
	}
	v := make(Version, 0, 9+len(mag))
	v = binary.BigEndian.AppendUint64(v, epoch)
	v = append(v, byte(len(mag)))
	return append(v, mag...), nil
}

// Epoch returns the epoch a version was made in.
func (v Version) Epoch() uint64 {
	if len(v) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v[:8])
}

// ClockMicros returns the server time of a ClockVersion, in microseconds
// (0 for another kind of version).
func (v Version) ClockMicros() uint64 {
	if len(v) != 16 {
		return 0
	}
	return binary.BigEndian.Uint64(v[8:]) >> 1
}

// Epoch is a pipeline's current version epoch, shared by its readers: a
// source moves it on when versions already published may no longer be
// comparable with new ones (a new run, a failover, a clock stepped back, a
// gap healed by a re-read). The zero value (and nil) is epoch 0.
//
// An epoch is only used once it is saved: Advance records the next epoch
// with the caller's save function before any reader can load it, so a
// restart never goes back to an epoch older than one whose versions were
// published.
type Epoch struct {
	v  atomic.Uint64
	mu sync.Mutex // serializes Advance
}

// NewEpoch returns an epoch starting at n.
func NewEpoch(n uint64) *Epoch {
	e := &Epoch{}
	e.v.Store(n)
	return e
}

// Load returns the current epoch.
func (e *Epoch) Load() uint64 {
	if e == nil {
		return 0
	}
	return e.v.Load()
}

// Advance starts the next epoch: save is called with it first, and only
// once save returned nil do readers see it. On a save error the epoch
// stays where it was and the error is returned. Concurrent calls run one
// after the other, each moving the epoch on by one.
func (e *Epoch) Advance(save func(next uint64) error) (uint64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	next := e.v.Load() + 1
	if err := save(next); err != nil {
		return e.v.Load(), err
	}
	e.v.Store(next)
	return next, nil
}
