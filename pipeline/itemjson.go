package pipeline

import (
	"fmt"
	json "github.com/goccy/go-json"
	"slices"
	"strconv"
)

// AppendItemJSON appends an item as DynamoDB JSON, attributes sorted by
// name.
func AppendItemJSON(dst []byte, m map[string]Attr) []byte { return appendAttrMap(dst, m) }

// ParseItemJSON reads an item written by AppendItemJSON (or any item in
// DynamoDB JSON).
func ParseItemJSON(data []byte) (map[string]Attr, error) {
	var w map[string]wireAttr
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("item JSON: %w", err)
	}
	out := make(map[string]Attr, len(w))
	for k, v := range w {
		out[k] = v.Attr
	}
	return out, nil
}

// appendAttrMap writes the attributes sorted by name, so one item always
// encodes to the same bytes.
func appendAttrMap(dst []byte, m map[string]Attr) []byte {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	dst = append(dst, '{')
	for i, k := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		a := m[k]
		dst = appendAttr(dst, &a)
	}
	return append(dst, '}')
}

// appendAttr writes DynamoDB JSON: {"S":"…"}, {"N":"…"}, {"B":"base64"}, ….
func appendAttr(dst []byte, a *Attr) []byte {
	dst = append(dst, `{"`...)
	dst = append(dst, a.Kind.String()...)
	dst = append(dst, `":`...)
	switch a.Kind {
	case AttrS:
		dst = appendString(dst, a.S)
	case AttrN:
		dst = appendString(dst, a.N)
	case AttrB:
		dst = appendBase64(dst, a.B)
	case AttrBOOL:
		dst = strconv.AppendBool(dst, a.BOOL)
	case AttrNULL:
		dst = append(dst, "true"...)
	case AttrL:
		dst = append(dst, '[')
		for i := range a.L {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendAttr(dst, &a.L[i])
		}
		dst = append(dst, ']')
	case AttrM:
		dst = appendAttrMap(dst, a.M)
	case AttrSS, AttrNS:
		list := a.SS
		if a.Kind == AttrNS {
			list = a.NS
		}
		dst = append(dst, '[')
		for i, s := range list {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, s)
		}
		dst = append(dst, ']')
	case AttrBS:
		dst = appendBase64List(dst, a.BS)
	}
	return append(dst, '}')
}

type wireAttr struct{ Attr }

// UnmarshalJSON reads DynamoDB JSON: an object with exactly one type key.
func (w *wireAttr) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if len(raw) != 1 {
		return fmt.Errorf("attribute value must have exactly one type key, has %d", len(raw))
	}
	for k, msg := range raw {
		a, err := decodeAttr(k, msg)
		if err != nil {
			return fmt.Errorf("attribute %s: %w", k, err)
		}
		w.Attr = a
	}
	return nil
}

func decodeAttr(kind string, msg json.RawMessage) (Attr, error) {
	var a Attr
	var err error
	switch kind {
	case "S":
		a.Kind = AttrS
		err = json.Unmarshal(msg, &a.S)
	case "N":
		a.Kind = AttrN
		err = json.Unmarshal(msg, &a.N)
	case "B":
		a.Kind = AttrB
		err = json.Unmarshal(msg, &a.B)
		a.B = nonNil(a.B)
	case "BOOL":
		a.Kind = AttrBOOL
		err = json.Unmarshal(msg, &a.BOOL)
	case "NULL":
		a.Kind = AttrNULL
	case "L":
		a.Kind = AttrL
		var l []wireAttr
		err = json.Unmarshal(msg, &l)
		a.L = make([]Attr, len(l))
		for i := range l {
			a.L[i] = l[i].Attr
		}
	case "M":
		a.Kind = AttrM
		var m map[string]wireAttr
		err = json.Unmarshal(msg, &m)
		a.M = make(map[string]Attr, len(m))
		for k, v := range m {
			a.M[k] = v.Attr
		}
	case "SS":
		a.Kind = AttrSS
		err = json.Unmarshal(msg, &a.SS)
	case "NS":
		a.Kind = AttrNS
		err = json.Unmarshal(msg, &a.NS)
	case "BS":
		a.Kind = AttrBS
		err = json.Unmarshal(msg, &a.BS)
		a.BS = nonNilAll(a.BS)
	default:
		return a, fmt.Errorf("unknown attribute type")
	}
	return a, err
}
