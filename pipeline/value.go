package pipeline

import (
	"fmt"
	"math"
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
)

var typeNames = [...]string{
	TypeNone:   "none",
	TypeString: "string",
	TypeHash:   "hash",
	TypeList:   "list",
	TypeSet:    "set",
	TypeZSet:   "zset",
	TypeItem:   "item",
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
	return TypeNone, fmt.Errorf("unknown value type %q (want string, hash, list, set, zset or item)", s)
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
	default:
		return 0
	}
}

// Validate checks the invariants a sink relies on: a known type, only the
// matching field set, no NaN score, and no empty collection (Redis deletes
// a collection when its last element goes, so an empty one is a bug).
func (v *Value) Validate() error {
	set := 0
	for _, b := range []bool{v.String != nil, v.Hash != nil, v.List != nil, v.Set != nil, v.ZSet != nil, v.Item != nil} {
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
