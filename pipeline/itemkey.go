package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"unicode/utf8"
)

// KeyAttr is one attribute of a DynamoDB primary key.
type KeyAttr struct {
	Name  string
	Value Attr
}

// EncodeItemKey is the event key of a DynamoDB item: its primary key as
// DynamoDB JSON, partition attribute first, then the sort attribute:
//
//	{"userId":{"S":"u1"},"orderId":{"N":"42"}}
//
// The same item always gets the same bytes, so its events share a Kafka
// partition; the order survives, so a sink can rebuild the key (or a Redis
// key template) from it.
func EncodeItemKey(key []KeyAttr) []byte {
	dst := []byte{'{'}
	for i, k := range key {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k.Name)
		dst = append(dst, ':')
		dst = appendAttr(dst, &k.Value)
	}
	return append(dst, '}')
}

// DecodeItemKey is the inverse of EncodeItemKey.
func DecodeItemKey(b []byte) ([]KeyAttr, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("item key %q is not a JSON object", b)
	}
	var out []KeyAttr
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("item key %q: %w", b, err)
		}
		name, _ := t.(string)
		var w wireAttr
		if err := dec.Decode(&w); err != nil {
			return nil, fmt.Errorf("item key %q: attribute %q: %w", b, name, err)
		}
		out = append(out, KeyAttr{Name: name, Value: w.Attr})
	}
	if len(out) == 0 || len(out) > 2 {
		return nil, fmt.Errorf("item key %q has %d attributes, want 1 or 2", b, len(out))
	}
	return out, nil
}

// KeyText renders a key attribute for a Redis key: a string as is, a
// number as its decimal text, binary as its bytes.
func KeyText(a Attr) ([]byte, error) {
	switch a.Kind {
	case AttrS:
		return []byte(a.S), nil
	case AttrN:
		return []byte(a.N), nil
	case AttrB:
		return a.B, nil
	default:
		return nil, fmt.Errorf("a key attribute of type %s cannot be part of a Redis key", a.Kind)
	}
}

// KeyAttrFromText is the inverse of KeyText for a key attribute of type
// typ (S, N or B).
func KeyAttrFromText(typ string, text []byte) (Attr, error) {
	switch typ {
	case "S":
		if !utf8.Valid(text) {
			return Attr{}, fmt.Errorf("%q is not valid UTF-8, as an S key attribute must be", text)
		}
		return Attr{Kind: AttrS, S: string(text)}, nil
	case "N":
		if !IsNumber(string(text)) {
			return Attr{}, fmt.Errorf("%q is not a number", text)
		}
		return Attr{Kind: AttrN, N: string(text)}, nil
	case "B":
		return Attr{Kind: AttrB, B: text}, nil
	}
	return Attr{}, fmt.Errorf("key attribute type %q: want S, N or B", typ)
}

var numberRE = regexp.MustCompile(`^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$`)

// IsNumber reports whether s is a number DynamoDB's N type takes (its
// range and precision aside, which DynamoDB itself checks).
func IsNumber(s string) bool { return numberRE.MatchString(s) }
