package pipeline

import (
	"reflect"
	"testing"
)

func TestItemKeyRoundTrip(t *testing.T) {
	for _, key := range [][]KeyAttr{
		{{Name: "userId", Value: Attr{Kind: AttrS, S: "u1 \"quoted\""}}},
		{{Name: "z", Value: Attr{Kind: AttrN, N: "42.5"}}, {Name: "a", Value: Attr{Kind: AttrB, B: []byte{0, 0xff}}}},
	} {
		b := EncodeItemKey(key)
		got, err := DecodeItemKey(b)
		if err != nil || !reflect.DeepEqual(got, key) {
			t.Fatalf("%s decoded to %v, %v", b, got, err)
		}
	}
	if _, err := DecodeItemKey([]byte("user:1")); err == nil {
		t.Fatal("a Redis key decoded as an item key")
	}
}
