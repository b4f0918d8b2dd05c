package pipeline

import (
	"math/big"
	"strings"
	"testing"
)

// The forms are what DynamoDB (and DynamoDB Local 3.x, checked with
// PutItem then Scan) gives back for a number written in another form:
// leading and trailing zeros go, exponents are written out, "-0" is 0.
func TestCanonicalNumber(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "1": "1", "-1": "-1", "10": "10", "1.5": "1.5", "-0.25": "-0.25",
		"01": "1", "1.0": "1", "1.": "1", "+3": "3", "-0": "0", "0.0": "0", "-0.0": "0", "000": "0",
		".5": "0.5", "-.5": "-0.5", "-00.10": "-0.1", "1e2": "100", "1E+2": "100", "0.1e1": "1",
		"1e-5": "0.00001", "0e1000": "0", "1e30": "1000000000000000000000000000000",
		"1.00000000000000007629769841092E+50":    "100000000000000007629769841092000000000000000000000",
		"12345678901234567890123456789012345678": "12345678901234567890123456789012345678",
		"1e125":                                  "1" + strings.Repeat("0", 125),
		"1e-130":                                 "0." + strings.Repeat("0", 129) + "1",
	} {
		got, err := CanonicalNumber(in)
		if err != nil || got != want {
			t.Errorf("CanonicalNumber(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "1x", "--1", "1e", ".", "NaN", "Infinity", " 1",
		"123456789012345678901234567890123456789", "1e126", "1e-131", "1e999999999999999999999"} {
		if got, err := CanonicalNumber(in); err == nil {
			t.Errorf("CanonicalNumber(%q) = %q, want an error", in, got)
		}
	}
}

// Cutover issue 13, item 11: under a rule user:{id} with id of type N, the
// Redis keys user:1, user:01 and user:1.0 all became the DynamoDB item
// id=1 — DynamoDB stores a number in one form — so they overwrote each
// other and a delete of one removed the others' item. Only the form
// DynamoDB itself returns is a key now; the others are refused with the
// form DynamoDB would store.
func TestKeyAttrFromTextTakesOnlyCanonicalNumbers(t *testing.T) {
	if a, err := KeyAttrFromText("N", []byte("1")); err != nil || a.N != "1" {
		t.Fatalf("1: %v, %v", a, err)
	}
	for _, text := range []string{"01", "1.0", "+1", "1e0", "-0"} {
		_, err := KeyAttrFromText("N", []byte(text))
		if err == nil {
			t.Errorf("%s accepted as a key number", text)
			continue
		}
		if !strings.Contains(err.Error(), "non-canonical form "+text) || !strings.Contains(err.Error(), "DynamoDB stores it as ") {
			t.Errorf("%s: %v", text, err)
		}
	}
	if _, err := KeyAttrFromText("N", []byte("1x")); err == nil || !strings.Contains(err.Error(), "not a number") {
		t.Errorf("1x: %v", err)
	}
}

// DynamoDB refuses an empty S or B key attribute; an empty text is never
// a key attribute.
func TestKeyAttrFromTextRefusesEmpty(t *testing.T) {
	for _, typ := range []string{"S", "B", "N"} {
		_, err := KeyAttrFromText(typ, nil)
		if err == nil || !strings.Contains(err.Error(), "DynamoDB key attributes cannot be empty") {
			t.Errorf("type %s, empty text: %v", typ, err)
		}
	}
	for _, a := range []Attr{{Kind: AttrS}, {Kind: AttrB}, {Kind: AttrN, N: "01"}} {
		if err := CheckKeyAttr(a); err == nil {
			t.Errorf("key attribute %+v accepted", a)
		}
	}
	for _, a := range []Attr{{Kind: AttrS, S: "x"}, {Kind: AttrB, B: []byte{0}}, {Kind: AttrN, N: "-1.5"}} {
		if err := CheckKeyAttr(a); err != nil {
			t.Errorf("key attribute %+v: %v", a, err)
		}
	}
}

// FuzzCanonicalNumber: the canonical form is a fixed point, and it is the
// same number (compared as big decimals).
func FuzzCanonicalNumber(f *testing.F) {
	for _, s := range []string{"01", "1.0", "-0", ".5", "1e2", "-00.10", "1.00000000000000007629769841092E+50"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := CanonicalNumber(s)
		if err != nil {
			return
		}
		if again, err := CanonicalNumber(c); err != nil || again != c {
			t.Fatalf("%q → %q → %q, %v", s, c, again, err)
		}
		a, okA := new(big.Float).SetPrec(512).SetString(s)
		if !okA {
			return // an exponent too large for big.Float ("0e99999999999999999999")
		}
		b, okB := new(big.Float).SetPrec(512).SetString(c)
		if !okB || a.Cmp(b) != 0 {
			t.Fatalf("%q → %q: another number", s, c)
		}
	})
}
