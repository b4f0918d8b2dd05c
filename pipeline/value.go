package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Type is the data type of a Value.
type Type uint8

const (
	// TypeNone is the type of a delete event's (empty) value.
	TypeNone Type = iota
	// TypeString is a Redis string: Value.String.
	TypeString
	// TypeHash is a Redis hash: Value.Hash, field order not significant.
	TypeHash
	// TypeList is a Redis list: Value.List, in order.
	TypeList
	// TypeSet is a Redis set: Value.Set, order not significant.
	TypeSet
	// TypeZSet is a Redis sorted set: Value.ZSet.
	TypeZSet
	// TypeItem is a DynamoDB item: Value.Item.
	TypeItem
	// TypeStream is a Redis stream: Value.Stream.
	TypeStream
)

var typeNames = [...]string{
	TypeNone:   "none",
	TypeString: "string",
	TypeHash:   "hash",
	TypeList:   "list",
	TypeSet:    "set",
	TypeZSet:   "zset",
	TypeItem:   "item",
	TypeStream: "stream",
}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseType is the inverse of Type.String.
func ParseType(s string) (Type, error) {
	for i, n := range typeNames {
		if n == s {
			return Type(i), nil
		}
	}
	return TypeNone, fmt.Errorf("unknown value type %q (want string, hash, list, set, zset, stream or item)", s)
}

// Value is the typed state of one key. Exactly the field that matches Type
// is set. Byte slices may alias the buffers they were decoded from; treat a
// Value as read-only once it is in an Event.
type Value struct {
	Type   Type
	String []byte
	Hash   []Field
	List   [][]byte
	Set    [][]byte
	ZSet   []ScoredMember
	Item   map[string]Attr
	Stream *Stream
}

// Stream is a Redis stream: its entries, and what XADD, XDEL and XTRIM
// leave behind that the entries alone do not say (the last ID given out,
// the deleted and added counts), and its consumer groups. A group's
// pending entries and its consumers are not carried: a new consumer
// reads from the group's last-delivered ID.
type Stream struct {
	// Entries in ID order.
	Entries []StreamEntry
	// LastID is the last ID the stream gave out ("ms-seq"), which may be
	// past the last entry's (deleted or trimmed ones). XSETID sets it.
	LastID string
	// MaxDeletedID and EntriesAdded (Redis 7+: XINFO STREAM's
	// max-deleted-entry-id and entries-added; "" and -1 when unknown).
	MaxDeletedID string
	EntriesAdded int64
	// Groups are the consumer groups.
	Groups []StreamGroup
}

// StreamEntry is one entry of a stream.
type StreamEntry struct {
	ID     string
	Fields []Field
}

// StreamGroup is one consumer group of a stream.
type StreamGroup struct {
	Name []byte
	// LastDeliveredID is the ID a new consumer of the group reads after.
	LastDeliveredID string
	// EntriesRead is the group's entries-read counter (Redis 7+); -1 when
	// unknown.
	EntriesRead int64
}

// Field is one field of a Redis hash.
type Field struct {
	Name  []byte
	Value []byte
}

// ScoredMember is one member of a Redis sorted set. Scores are float64 as in
// Redis, including ±Inf; never NaN.
type ScoredMember struct {
	Member []byte
	Score  float64
}

// Len is the number of elements of a collection, 1 for a string or an
// item, 0 for none.
func (v *Value) Len() int {
	switch v.Type {
	case TypeString, TypeItem:
		return 1
	case TypeHash:
		return len(v.Hash)
	case TypeList:
		return len(v.List)
	case TypeSet:
		return len(v.Set)
	case TypeZSet:
		return len(v.ZSet)
	case TypeStream:
		if v.Stream == nil {
			return 0
		}
		return len(v.Stream.Entries)
	default:
		return 0
	}
}

// Validate checks the invariants a sink relies on: a known type, only the
// matching field set, no NaN score, and no empty collection (Redis deletes
// a collection when its last element goes, so an empty one is a bug).
func (v *Value) Validate() error {
	set := 0
	for _, b := range []bool{v.String != nil, v.Hash != nil, v.List != nil, v.Set != nil, v.ZSet != nil, v.Item != nil, v.Stream != nil} {
		if b {
			set++
		}
	}
	if set > 1 {
		return fmt.Errorf("value of type %s has more than one representation set", v.Type)
	}
	switch v.Type {
	case TypeString:
		if v.String == nil {
			return fmt.Errorf("string value is missing")
		}
		return nil
	case TypeHash, TypeList, TypeSet, TypeZSet, TypeItem:
		if v.Len() == 0 {
			return fmt.Errorf("%s value is empty", v.Type)
		}
	case TypeStream:
		// A stream may be empty: XDEL of every entry leaves the key.
		if v.Stream == nil {
			return fmt.Errorf("stream value is missing")
		}
		return v.Stream.validate()
	case TypeNone:
		return fmt.Errorf("upsert has no value")
	default:
		return fmt.Errorf("unknown value type %d", v.Type)
	}
	for _, m := range v.ZSet {
		if math.IsNaN(m.Score) {
			return fmt.Errorf("zset member %q has a NaN score", m.Member)
		}
	}
	if v.Type == TypeItem {
		for name, a := range v.Item {
			if err := a.Validate(); err != nil {
				return fmt.Errorf("attribute %q: %w", name, err)
			}
		}
	}
	return nil
}

// validate checks what a Redis target needs to rebuild the stream, so
// that a sink finds any fault before it touches the key (a script that
// fails half-way is not rolled back): IDs in their canonical form, entries
// after 0-0 (XADD refuses 0-0) in increasing ID order with at least one
// field; a last ID at or past the last entry's, which a stream without
// entries (one read whole: a piece always has entries) must have, and
// without which it carries no groups or deleted ID (they ride on the last
// piece, with the last ID); counters of -1 (unknown) or more; and group
// names that are unique (XGROUP CREATE refuses a second one).
func (s *Stream) validate() error {
	var prev StreamID
	for i, e := range s.Entries {
		id, err := ParseStreamID(e.ID)
		if err != nil {
			return fmt.Errorf("stream entry %d: %w", i, err)
		}
		if id == (StreamID{}) {
			return fmt.Errorf("stream entry %d has ID 0-0, which Redis never gives out", i)
		}
		if i > 0 && !prev.Less(id) {
			return fmt.Errorf("stream entry %s is not after %s", e.ID, s.Entries[i-1].ID)
		}
		if len(e.Fields) == 0 {
			return fmt.Errorf("stream entry %s has no field", e.ID)
		}
		prev = id
	}
	switch {
	case s.LastID != "":
		last, err := ParseStreamID(s.LastID)
		if err != nil {
			return fmt.Errorf("stream last ID: %w", err)
		}
		if len(s.Entries) > 0 && last.Less(prev) {
			return fmt.Errorf("stream last ID %s is before its last entry %s", s.LastID, s.Entries[len(s.Entries)-1].ID)
		}
	case len(s.Entries) == 0:
		return fmt.Errorf("stream without entries has no last ID")
	case len(s.Groups) > 0 || s.MaxDeletedID != "":
		return fmt.Errorf("stream piece carries groups or a max deleted ID without a last ID")
	}
	if s.MaxDeletedID != "" {
		if _, err := ParseStreamID(s.MaxDeletedID); err != nil {
			return fmt.Errorf("stream max deleted ID: %w", err)
		}
	}
	if s.EntriesAdded < -1 {
		return fmt.Errorf("stream entries-added %d is negative", s.EntriesAdded)
	}
	names := make(map[string]bool, len(s.Groups))
	for _, g := range s.Groups {
		if _, err := ParseStreamID(g.LastDeliveredID); err != nil {
			return fmt.Errorf("stream group %q: %w", g.Name, err)
		}
		if g.EntriesRead < -1 {
			return fmt.Errorf("stream group %q: entries-read %d is negative", g.Name, g.EntriesRead)
		}
		if names[string(g.Name)] {
			return fmt.Errorf("stream group %q appears twice", g.Name)
		}
		names[string(g.Name)] = true
	}
	return nil
}

// StreamID is a stream entry ID: milliseconds and a sequence number.
type StreamID struct{ Ms, Seq uint64 }

// ParseStreamID reads "ms-seq", in the canonical form Redis gives out (no
// sign, no leading zero): Redis would read "01-0" as 1-0, and the copy
// would then differ from the event.
func ParseStreamID(s string) (StreamID, error) {
	ms, seq, ok := strings.Cut(s, "-")
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	if !ok || err1 != nil || err2 != nil || strconv.FormatUint(a, 10) != ms || strconv.FormatUint(b, 10) != seq {
		return StreamID{}, fmt.Errorf("stream ID %q is not ms-seq", s)
	}
	return StreamID{a, b}, nil
}

// Less reports whether id comes before o.
func (id StreamID) Less(o StreamID) bool {
	return id.Ms < o.Ms || id.Ms == o.Ms && id.Seq < o.Seq
}
