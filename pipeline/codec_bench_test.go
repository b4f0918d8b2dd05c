package pipeline

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchEvents are the events of make bench's dataset: a 100-byte string
// with a TTL, a hash of 20 fields, and a DynamoDB item of mixed types.
func benchEvents() map[string]Event {
	rng := rand.New(rand.NewPCG(1, 2))
	bytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return b
	}
	src := SourceInfo{Connector: "redis", Name: "bench", Node: "127.0.0.1:6379", Time: time.UnixMilli(1767225599000)}
	ver := ClockVersion(0, 1767225599000123, false)
	hash := make([]Field, 20)
	for i := range hash {
		hash[i] = Field{Name: fmt.Appendf(nil, "field-%02d", i), Value: bytes(20)}
	}
	return map[string]Event{
		"string-100B": {Key: []byte("bench:s:0001234"), Op: OpUpsert, Origin: OriginSnapshot, Version: ver,
			Value: Value{Type: TypeString, String: bytes(100)}, ExpireAt: time.UnixMilli(1767229199000), Source: src},
		"hash-20-fields": {Key: []byte("bench:h:0001234"), Op: OpUpsert, Origin: OriginLive, Version: ver,
			Value: Value{Type: TypeHash, Hash: hash}, Source: src},
		"item-mixed": {Key: []byte(`{"pk":{"S":"order#1234"}}`), Op: OpUpsert, Origin: OriginLive, Version: ver,
			Value: Value{Type: TypeItem, Item: map[string]Attr{
				"pk": {Kind: AttrS, S: "order#1234"}, "total": {Kind: AttrN, N: "1234.56"},
				"paid": {Kind: AttrBOOL, BOOL: true}, "blob": {Kind: AttrB, B: bytes(64)},
				"tags": {Kind: AttrSS, SS: []string{"new", "gift"}},
				"lines": {Kind: AttrL, L: []Attr{{Kind: AttrM, M: map[string]Attr{
					"sku": {Kind: AttrS, S: "A-1"}, "qty": {Kind: AttrN, N: "2"}}}}},
			}}, Source: SourceInfo{Connector: "dynamodb", Name: "bench", Table: "orders"}},
		"delete": {Key: []byte("bench:s:0001234"), Op: OpDelete, Origin: OriginLive, Version: ver, Source: src},
	}
}

// BenchmarkEncode: ns/op and allocs/op are per event.
func BenchmarkEncode(b *testing.B) {
	for name, e := range benchEvents() {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = Encode(buf[:0], &e); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// BenchmarkDecode: ns/op and allocs/op are per event.
func BenchmarkDecode(b *testing.B) {
	for name, e := range benchEvents() {
		b.Run(name, func(b *testing.B) {
			data, err := Encode(nil, &e)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
