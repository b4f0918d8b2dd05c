package pipeline

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"slices"
)

// Diff describes how two values of one key differ, in words, or returns
// "" when they are equal. Hash fields and set members compare as sets;
// list elements and sorted-set members (with their scores) in order; item
// attributes by name, numbers as exact decimal text.
func Diff(a, b *Value) string {
	if a.Type != b.Type {
		return fmt.Sprintf("type %s ≠ %s", a.Type, b.Type)
	}
	switch a.Type {
	case TypeString:
		if !bytes.Equal(a.String, b.String) {
			return fmt.Sprintf("string of %d bytes ≠ %d bytes", len(a.String), len(b.String))
		}
	case TypeHash:
		af, bf := sortedFields(a.Hash), sortedFields(b.Hash)
		if len(af) != len(bf) {
			return fmt.Sprintf("hash of %d fields ≠ %d fields", len(af), len(bf))
		}
		for i := range af {
			if !bytes.Equal(af[i].Name, bf[i].Name) {
				return fmt.Sprintf("hash field %q ≠ %q", af[i].Name, bf[i].Name)
			}
			if !bytes.Equal(af[i].Value, bf[i].Value) {
				return fmt.Sprintf("hash field %q differs", af[i].Name)
			}
		}
	case TypeList:
		if d := diffElems("list", a.List, b.List); d != "" {
			return d
		}
	case TypeSet:
		if d := diffElems("set", sortedElems(a.Set), sortedElems(b.Set)); d != "" {
			return d
		}
	case TypeZSet:
		if len(a.ZSet) != len(b.ZSet) {
			return fmt.Sprintf("zset of %d members ≠ %d members", len(a.ZSet), len(b.ZSet))
		}
		for i := range a.ZSet {
			x, y := a.ZSet[i], b.ZSet[i]
			if !bytes.Equal(x.Member, y.Member) {
				return fmt.Sprintf("zset member %d: %q ≠ %q", i, x.Member, y.Member)
			}
			if x.Score != y.Score || math.Signbit(x.Score) != math.Signbit(y.Score) {
				return fmt.Sprintf("zset member %q: score %v ≠ %v", x.Member, x.Score, y.Score)
			}
		}
	case TypeItem:
		if len(a.Item) != len(b.Item) {
			return fmt.Sprintf("item of %d attributes ≠ %d attributes", len(a.Item), len(b.Item))
		}
		for name, x := range a.Item {
			y, ok := b.Item[name]
			if !ok {
				return fmt.Sprintf("attribute %q missing", name)
			}
			if !attrEqual(&x, &y) {
				return fmt.Sprintf("attribute %q differs", name)
			}
		}
	case TypeStream:
		return diffStream(a.Stream, b.Stream)
	default: // TypeNone: two deletes are equal
	}
	return ""
}

// diffStream compares two streams: entries in order, the last ID, and the
// groups by name; the counters Redis 7 adds are compared when both sides
// have them.
func diffStream(a, b *Stream) string {
	if a == nil || b == nil {
		if a != b {
			return "stream missing on one side"
		}
		return ""
	}
	if len(a.Entries) != len(b.Entries) {
		return fmt.Sprintf("stream of %d entries ≠ %d entries", len(a.Entries), len(b.Entries))
	}
	for i := range a.Entries {
		x, y := a.Entries[i], b.Entries[i]
		if x.ID != y.ID {
			return fmt.Sprintf("stream entry %d: ID %s ≠ %s", i, x.ID, y.ID)
		}
		if !slices.EqualFunc(x.Fields, y.Fields, func(f, g Field) bool { return bytes.Equal(f.Name, g.Name) && bytes.Equal(f.Value, g.Value) }) {
			return fmt.Sprintf("stream entry %s differs", x.ID)
		}
	}
	switch {
	case a.LastID != b.LastID:
		return fmt.Sprintf("stream last ID %s ≠ %s", a.LastID, b.LastID)
	case a.MaxDeletedID != "" && b.MaxDeletedID != "" && a.MaxDeletedID != b.MaxDeletedID:
		return fmt.Sprintf("stream max deleted ID %s ≠ %s", a.MaxDeletedID, b.MaxDeletedID)
	case a.EntriesAdded >= 0 && b.EntriesAdded >= 0 && a.EntriesAdded != b.EntriesAdded:
		return fmt.Sprintf("stream entries added %d ≠ %d", a.EntriesAdded, b.EntriesAdded)
	case len(a.Groups) != len(b.Groups):
		return fmt.Sprintf("stream of %d consumer groups ≠ %d", len(a.Groups), len(b.Groups))
	}
	ga, gb := sortedGroups(a.Groups), sortedGroups(b.Groups)
	for i := range ga {
		x, y := ga[i], gb[i]
		switch {
		case !bytes.Equal(x.Name, y.Name):
			return fmt.Sprintf("stream group %q ≠ %q", x.Name, y.Name)
		case x.LastDeliveredID != y.LastDeliveredID:
			return fmt.Sprintf("stream group %q: last delivered ID %s ≠ %s", x.Name, x.LastDeliveredID, y.LastDeliveredID)
		case x.EntriesRead >= 0 && y.EntriesRead >= 0 && x.EntriesRead != y.EntriesRead:
			return fmt.Sprintf("stream group %q: entries read %d ≠ %d", x.Name, x.EntriesRead, y.EntriesRead)
		}
	}
	return ""
}

func sortedGroups(gs []StreamGroup) []StreamGroup {
	out := slices.Clone(gs)
	slices.SortFunc(out, func(x, y StreamGroup) int { return bytes.Compare(x.Name, y.Name) })
	return out
}

func diffElems(kind string, a, b [][]byte) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%s of %d elements ≠ %d elements", kind, len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return fmt.Sprintf("%s element %d: %q ≠ %q", kind, i, a[i], b[i])
		}
	}
	return ""
}

func sortedFields(f []Field) []Field {
	out := slices.Clone(f)
	slices.SortFunc(out, func(x, y Field) int { return bytes.Compare(x.Name, y.Name) })
	return out
}

func sortedElems(e [][]byte) [][]byte {
	out := slices.Clone(e)
	slices.SortFunc(out, bytes.Compare)
	return out
}

func attrEqual(a, b *Attr) bool {
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case AttrS:
		return a.S == b.S
	case AttrN:
		return numEqual(a.N, b.N)
	case AttrB:
		return bytes.Equal(a.B, b.B)
	case AttrBOOL:
		return a.BOOL == b.BOOL
	case AttrNULL:
		return true
	case AttrL:
		if len(a.L) != len(b.L) {
			return false
		}
		for i := range a.L {
			if !attrEqual(&a.L[i], &b.L[i]) {
				return false
			}
		}
		return true
	case AttrM:
		if len(a.M) != len(b.M) {
			return false
		}
		for k, x := range a.M {
			y, ok := b.M[k]
			if !ok || !attrEqual(&x, &y) {
				return false
			}
		}
		return true
	case AttrSS:
		return slices.Equal(slices.Sorted(slices.Values(a.SS)), slices.Sorted(slices.Values(b.SS)))
	case AttrNS:
		return slices.Equal(canonicalNumbers(a.NS), canonicalNumbers(b.NS))
	case AttrBS:
		return diffElems("", sortedElems(a.BS), sortedElems(b.BS)) == ""
	}
	return false
}

// numEqual compares two DynamoDB numbers by value, exactly: DynamoDB
// stores "007" and "1.50" as 7 and 1.5.
func numEqual(a, b string) bool {
	if a == b {
		return true
	}
	x, ok1 := new(big.Rat).SetString(a)
	y, ok2 := new(big.Rat).SetString(b)
	return ok1 && ok2 && x.Cmp(y) == 0
}

// canonicalNumbers is a number set in one form per value, sorted.
func canonicalNumbers(ns []string) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		if r, ok := new(big.Rat).SetString(n); ok {
			out[i] = r.RatString()
		} else {
			out[i] = n
		}
	}
	slices.Sort(out)
	return out
}
