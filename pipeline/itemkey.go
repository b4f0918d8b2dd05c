package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
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
// typ (S, N or B). It takes only text that is a DynamoDB key attribute as
// DynamoDB itself would give it back, so that distinct texts are distinct
// items: never empty, and a number only in its canonical form (see
// CanonicalNumber) — "01" would be stored as 1, the item of another text.
// An error reads after "key attribute <name>".
func KeyAttrFromText(typ string, text []byte) (Attr, error) {
	if len(text) == 0 && (typ == "S" || typ == "N" || typ == "B") {
		return Attr{}, errEmptyKeyAttr
	}
	switch typ {
	case "S":
		if !utf8.Valid(text) {
			return Attr{}, fmt.Errorf("is %q, not valid UTF-8 as an S key attribute must be (give it type B)", text)
		}
		return Attr{Kind: AttrS, S: string(text)}, nil
	case "N":
		a := Attr{Kind: AttrN, N: string(text)}
		if err := CheckKeyAttr(a); err != nil {
			return Attr{}, err
		}
		return a, nil
	case "B":
		return Attr{Kind: AttrB, B: text}, nil
	}
	return Attr{}, fmt.Errorf("has type %q: want S, N or B", typ)
}

var errEmptyKeyAttr = errors.New("is empty, and DynamoDB key attributes cannot be empty")

// CheckKeyAttr reports whether a is a key attribute as DynamoDB stores it:
// an S or B that is not empty, an N in canonical form. An item key that
// DynamoDB gave always is; one that is not cannot be written without
// meeting another key's item. An error reads after "key attribute <name>".
func CheckKeyAttr(a Attr) error {
	switch a.Kind {
	case AttrS:
		if a.S == "" {
			return errEmptyKeyAttr
		}
	case AttrB:
		if len(a.B) == 0 {
			return errEmptyKeyAttr
		}
	case AttrN:
		if a.N == "" {
			return errEmptyKeyAttr
		}
		c, err := CanonicalNumber(a.N)
		if err != nil {
			return fmt.Errorf("is %q, %w", a.N, err)
		}
		if c != a.N {
			return fmt.Errorf("is a number in non-canonical form %s; DynamoDB stores it as %s, which another key maps to (write the number as %s)", a.N, c, c)
		}
	default:
		return fmt.Errorf("is of type %s, which a DynamoDB key attribute cannot be", a.Kind)
	}
	return nil
}

var numberRE = regexp.MustCompile(`^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$`)

// IsNumber reports whether s is a number DynamoDB's N type takes (its
// range and precision aside, which DynamoDB itself checks).
func IsNumber(s string) bool { return numberRE.MatchString(s) }

// DynamoDB's numbers: at most 38 significant digits, magnitude from 1e-130
// to below 1e126.
const (
	numberDigits = 38
	numberMinExp = -130 // of the leading digit
	numberMaxExp = 125
)

var errRange = errors.New("a number out of DynamoDB's range (1e-130 to 1e126 in magnitude)")

// CanonicalNumber is the text DynamoDB stores, and gives back, for the
// number s: no '+', no exponent (written out in full), no leading zeros
// (but the one of "0.5"), no trailing zeros after the point, no point
// without a fraction, and "0" for zero of either sign: "+01.50e1" is
// "15", ".5" is "0.5", "-0" is "0", "1E+3" is "1000". DynamoDB's
// documentation says leading and trailing zeros are trimmed; DynamoDB
// Local 3.x gives back exactly these forms. Numbers DynamoDB refuses —
// more than 38 significant digits, magnitude outside 1e-130 to below
// 1e126 — are an error here too.
func CanonicalNumber(s string) (string, error) {
	if !IsNumber(s) {
		return "", errors.New("not a number")
	}
	neg := s[0] == '-'
	s = strings.TrimLeft(s, "+-")
	mantissa, expText, hasExp := strings.Cut(strings.ToLower(s), "e")
	intPart, frac, _ := strings.Cut(mantissa, ".")
	digits := intPart + frac
	trimmed := strings.TrimLeft(digits, "0")
	if trimmed == "" {
		return "0", nil
	}
	exp := 0
	if hasExp {
		e, err := strconv.Atoi(expText)
		if err != nil || e > 1e6 || e < -1e6 {
			return "", errRange
		}
		exp = e
	}
	// The decimal point's place, counted from the start of digits.
	point := len(intPart) + exp - (len(digits) - len(trimmed))
	digits = strings.TrimRight(trimmed, "0")
	switch {
	case len(digits) > numberDigits:
		return "", fmt.Errorf("a number of %d significant digits; DynamoDB keeps at most %d", len(digits), numberDigits)
	case point-1 > numberMaxExp || point-1 < numberMinExp:
		return "", errRange
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	switch {
	case point <= 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -point))
		b.WriteString(digits)
	case point >= len(digits):
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", point-len(digits)))
	default:
		b.WriteString(digits[:point])
		b.WriteByte('.')
		b.WriteString(digits[point:])
	}
	return b.String(), nil
}
