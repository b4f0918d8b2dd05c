package pipeline

import (
	"fmt"
	"unicode/utf8"
)

// AttrKind is the data type of a DynamoDB attribute value.
type AttrKind uint8

// The DynamoDB attribute types, named as in the DynamoDB API.
const (
	AttrS AttrKind = iota + 1
	AttrN
	AttrB
	AttrBOOL
	AttrNULL
	AttrL
	AttrM
	AttrSS
	AttrNS
	AttrBS
)

var attrKindNames = [...]string{
	AttrS: "S", AttrN: "N", AttrB: "B", AttrBOOL: "BOOL", AttrNULL: "NULL",
	AttrL: "L", AttrM: "M", AttrSS: "SS", AttrNS: "NS", AttrBS: "BS",
}

func (k AttrKind) String() string {
	if k > 0 && int(k) < len(attrKindNames) {
		return attrKindNames[k]
	}
	return fmt.Sprintf("attr(%d)", uint8(k))
}

// Attr is a DynamoDB attribute value, carried losslessly: numbers stay the
// exact decimal strings DynamoDB returned (never float64), binary stays
// bytes. Exactly the field matching Kind is meaningful; S holds the string
// of an S, N holds the number of an N.
type Attr struct {
	Kind AttrKind
	S    string
	N    string
	B    []byte
	BOOL bool
	L    []Attr
	M    map[string]Attr
	SS   []string
	NS   []string
	BS   [][]byte
}

// Validate checks what DynamoDB itself would reject on the way in and what
// the wire format needs: valid UTF-8 strings, well-formed numbers, non-empty
// sets.
func (a *Attr) Validate() error {
	switch a.Kind {
	case AttrS:
		if !utf8.ValidString(a.S) {
			return fmt.Errorf("string (S) value is not valid UTF-8")
		}
	case AttrN:
		if !isDecimal(a.N) {
			return fmt.Errorf("number (N) value %q is not a decimal number", a.N)
		}
	case AttrB, AttrBOOL, AttrNULL:
	case AttrL:
		for i := range a.L {
			if err := a.L[i].Validate(); err != nil {
				return fmt.Errorf("list (L) element %d: %w", i, err)
			}
		}
	case AttrM:
		for k, v := range a.M {
			if !utf8.ValidString(k) {
				return fmt.Errorf("map (M) key %q is not valid UTF-8", k)
			}
			if err := v.Validate(); err != nil {
				return fmt.Errorf("map (M) entry %q: %w", k, err)
			}
		}
	case AttrSS:
		if len(a.SS) == 0 {
			return fmt.Errorf("string set (SS) is empty")
		}
		for _, s := range a.SS {
			if !utf8.ValidString(s) {
				return fmt.Errorf("string set (SS) element is not valid UTF-8")
			}
		}
	case AttrNS:
		if len(a.NS) == 0 {
			return fmt.Errorf("number set (NS) is empty")
		}
		for _, n := range a.NS {
			if !isDecimal(n) {
				return fmt.Errorf("number set (NS) element %q is not a decimal number", n)
			}
		}
	case AttrBS:
		if len(a.BS) == 0 {
			return fmt.Errorf("binary set (BS) is empty")
		}
	default:
		return fmt.Errorf("unknown attribute kind %d", a.Kind)
	}
	return nil
}

// isDecimal reports whether s is a number as DynamoDB writes one: an
// optional sign, digits with an optional fraction, an optional exponent.
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		exp := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}
