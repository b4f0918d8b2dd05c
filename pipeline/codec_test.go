package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

// floatSum is 0.1 + 0.2 in float64 arithmetic, 0.30000000000000004: a
// score that needs all 17 digits. Written as the constant 0.1 + 0.2 it
// would be exactly 0.3 (Go adds untyped constants exactly).
var floatSum = math.Nextafter(0.3, 1)

func sampleEvents() map[string]Event {
	src := SourceInfo{Connector: "redis", Name: "demo", DB: 3, Node: "127.0.0.1:6379", Position: []byte("cursor-17"), Time: time.UnixMilli(1767225599000)}
	ver := ClockVersion(0, 1767225599000123, false)
	exp := time.UnixMilli(1767225600000)
	bin := []byte{0x00, 0xff, 0x80, '"', '\\', '\n'}
	return map[string]Event{
		"stream": {Key: []byte("k:stream"), Op: OpUpsert, Origin: OriginLive, Version: ver, Source: src,
			Value: Value{Type: TypeStream, Stream: &Stream{
				Entries: []StreamEntry{{ID: "1-0", Fields: []Field{{Name: []byte("f"), Value: bin}}}, {ID: "1-5", Fields: []Field{{Name: bin, Value: []byte{}}}}},
				LastID:  "7-2", MaxDeletedID: "7-2", EntriesAdded: 9,
				Groups: []StreamGroup{{Name: []byte("readers"), LastDeliveredID: "1-0", EntriesRead: 1}, {Name: bin, LastDeliveredID: "0-0", EntriesRead: -1}},
			}}},
		"empty stream": {Key: []byte("k:stream0"), Op: OpUpsert, Origin: OriginLive, Version: ver, Source: src,
			Value: Value{Type: TypeStream, Stream: &Stream{LastID: "3-0", EntriesAdded: -1}}},
		"string": {Key: []byte("k:str"), Op: OpUpsert, Origin: OriginSnapshot, Version: ver,
			Value: Value{Type: TypeString, String: bin}, ExpireAt: exp, Source: src},
		"empty string": {Key: []byte("k:empty"), Op: OpUpsert, Origin: OriginLive, Version: ver,
			Value: Value{Type: TypeString, String: []byte{}}, Source: src},
		"binary key": {Key: bin, Op: OpUpsert, Origin: OriginSnapshot, Version: ver,
			Value: Value{Type: TypeString, String: []byte("v")}, Source: src},
		"hash": {Key: []byte("k:hash"), Op: OpUpsert, Origin: OriginSnapshot, Version: ver,
			Value: Value{Type: TypeHash, Hash: []Field{{Name: []byte("a"), Value: []byte("1")}, {Name: []byte{}, Value: bin}}}, Source: src},
		"list": {Key: []byte("k:list"), Op: OpUpsert, Origin: OriginRepair, Version: ver,
			Value: Value{Type: TypeList, List: [][]byte{[]byte("x"), []byte{}, []byte("x"), bin}}, Source: src},
		"set": {Key: []byte("k:set"), Op: OpUpsert, Origin: OriginSnapshot, Version: ver,
			Value: Value{Type: TypeSet, Set: [][]byte{[]byte("a"), bin}}, Source: src},
		"zset": {Key: []byte("k:zset"), Op: OpUpsert, Origin: OriginSnapshot, Version: ver,
			Value: Value{Type: TypeZSet, ZSet: []ScoredMember{{Member: []byte("a"), Score: 1.5}, {Member: []byte("b"), Score: math.Inf(-1)},
				{Member: []byte("c"), Score: math.Inf(1)}, {Member: bin, Score: floatSum}, {Member: []byte("e"), Score: -1e300}}}, Source: src},
		"item": {Key: []byte("k:item"), Op: OpUpsert, Origin: OriginLive, Version: ver,
			Value: Value{Type: TypeItem, Item: map[string]Attr{
				"s": {Kind: AttrS, S: "héllo \"q\"\n"}, "n": {Kind: AttrN, N: "123456789012345678901234567890.123"},
				"b": {Kind: AttrB, B: bin}, "t": {Kind: AttrBOOL, BOOL: true}, "null": {Kind: AttrNULL},
				"l":  {Kind: AttrL, L: []Attr{{Kind: AttrS, S: "x"}, {Kind: AttrN, N: "-1e-130"}}},
				"m":  {Kind: AttrM, M: map[string]Attr{"inner": {Kind: AttrBOOL}}},
				"ss": {Kind: AttrSS, SS: []string{"a", "b"}}, "ns": {Kind: AttrNS, NS: []string{"1", "2.5"}},
				"bs": {Kind: AttrBS, BS: [][]byte{{1}, {2, 3}}},
			}}, Source: SourceInfo{Connector: "dynamodb", Name: "d", Table: "users"}},
		"delete": {Key: []byte("k:gone"), Op: OpDelete, Origin: OriginLive, Version: ClockVersion(1, 5, true), Source: src},
		// Redis accepts SET "" v: the empty key is a key, never nil once
		// decoded (a nil record key would be partitioned as a truncate).
		"empty key": {Key: []byte{}, Op: OpUpsert, Origin: OriginSnapshot, Version: ver,
			Value: Value{Type: TypeString, String: []byte("v")}, ExpireAt: exp, Source: src},
		"empty key delete": {Key: []byte{}, Op: OpDelete, Origin: OriginLive, Version: ver, Source: src},
		"chunk": {Key: []byte("k:big"), Op: OpUpsert, Origin: OriginSnapshot, Version: ver,
			Value: Value{Type: TypeList, List: [][]byte{[]byte("x")}}, Chunk: &Chunk{Index: 3, Offset: 3000, Last: true}, Source: src},
		"truncate": {Op: OpTruncate, Origin: OriginLive, Version: ver, Source: src,
			Scope: &Scope{Partition: 2, Partitions: 12, Slots: [][2]int{{0, 5460}}, Filter: KeyFilter{Include: []string{"user:*"}, Exclude: []string{"*:tmp"}}}},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for name, e := range sampleEvents() {
		t.Run(name, func(t *testing.T) {
			b, err := Encode(nil, &e)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !json.Valid(b) {
				t.Fatalf("Encode wrote invalid JSON: %s", b)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Fatalf("round trip changed the event\n got %#v\nwant %#v\nwire %s", got, e, b)
			}
			again, err := Encode(nil, &got)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs:\n%s\n%s", b, again)
			}
		})
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	ver := ClockVersion(0, 1, false)
	cases := map[string]Event{
		"truncate key": {Key: []byte("k"), Op: OpTruncate, Origin: OriginLive, Version: ver, Scope: &Scope{Partitions: 1}},
		"no version":   {Key: []byte("k"), Op: OpUpsert, Origin: OriginLive, Value: Value{Type: TypeString, String: []byte("x")}},
		"no value":     {Key: []byte("k"), Op: OpUpsert, Origin: OriginLive, Version: ver},
		"empty hash":   {Key: []byte("k"), Op: OpUpsert, Origin: OriginLive, Version: ver, Value: Value{Type: TypeHash, Hash: []Field{}}},
		"nan score":    {Key: []byte("k"), Op: OpUpsert, Origin: OriginLive, Version: ver, Value: Value{Type: TypeZSet, ZSet: []ScoredMember{{Member: []byte("m"), Score: math.NaN()}}}},
		"bad N":        {Key: []byte("k"), Op: OpUpsert, Origin: OriginLive, Version: ver, Value: Value{Type: TypeItem, Item: map[string]Attr{"n": {Kind: AttrN, N: "1.2.3"}}}},
		"delete+val":   {Key: []byte("k"), Op: OpDelete, Origin: OriginLive, Version: ver, Value: Value{Type: TypeString, String: []byte("x")}},
		"no origin":    {Key: []byte("k"), Op: OpDelete, Version: ver},
		"unknown op":   {Key: []byte("k"), Op: 9, Origin: OriginLive, Version: ver},
		"invalid S":    {Key: []byte("k"), Op: OpUpsert, Origin: OriginLive, Version: ver, Value: Value{Type: TypeItem, Item: map[string]Attr{"s": {Kind: AttrS, S: "\xff"}}}},
		"two reprs":    {Key: []byte("k"), Op: OpUpsert, Origin: OriginLive, Version: ver, Value: Value{Type: TypeString, String: []byte("x"), List: [][]byte{{1}}}},
		"empty set SS": {Key: []byte("k"), Op: OpUpsert, Origin: OriginLive, Version: ver, Value: Value{Type: TypeItem, Item: map[string]Attr{"s": {Kind: AttrSS}}}},
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Encode(nil, &e); !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("Encode = %v, want ErrInvalidEvent", err)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := map[string]string{
		"not json":        `hello`,
		"no version":      `{"op":"d","key":"aw==","version":"01","origin":"live"}`,
		"future format":   `{"v":2,"op":"d","key":"aw==","version":"01","origin":"live"}`,
		"bad op":          `{"v":1,"op":"x","key":"aw==","version":"01","origin":"live"}`,
		"bad base64 key":  `{"v":1,"op":"d","key":"!!","version":"01","origin":"live"}`,
		"bad version":     `{"v":1,"op":"d","key":"aw==","version":"zz","origin":"live"}`,
		"no key":          `{"v":1,"op":"d","version":"01","origin":"live"}`,
		"null key":        `{"v":1,"op":"u","key":null,"version":"01","origin":"live","after":{"type":"string","string":""}}`,
		"truncate key":    `{"v":1,"op":"t","key":"","version":"01","origin":"live","scope":{"partition":0,"partitions":1}}`,
		"upsert no after": `{"v":1,"op":"u","key":"aw==","version":"01","origin":"live"}`,
		"bad type":        `{"v":1,"op":"u","key":"aw==","version":"01","origin":"live","after":{"type":"blob"}}`,
		"bad score":       `{"v":1,"op":"u","key":"aw==","version":"01","origin":"live","after":{"type":"zset","zset":[["YQ==","nan"]]}}`,
		"two attr types":  `{"v":1,"op":"u","key":"aw==","version":"01","origin":"live","after":{"type":"item","item":{"a":{"S":"x","N":"1"}}}}`,
		"delete after":    `{"v":1,"op":"d","key":"aw==","version":"01","origin":"live","after":{"type":"string","string":""}}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode([]byte(in)); !errors.Is(err, ErrDecode) {
				t.Fatalf("Decode = %v, want ErrDecode", err)
			}
		})
	}
}

// Cutover used to refuse the empty key as an invalid event, and the
// publisher stopped a backfill on it for good. The wire format carries it
// as "key":"" and tells it from the absent key of a truncate; records
// written before, with a non-empty key or none, still decode as they did.
func TestDecodeTellsTheEmptyKeyFromNoKey(t *testing.T) {
	for name, c := range map[string]struct {
		in  string
		key []byte // nil: no key
	}{
		"empty key":     {`{"v":1,"op":"d","key":"","version":"01","origin":"live"}`, []byte{}},
		"empty upsert":  {`{"v":1,"op":"u","key":"","version":"01","origin":"live","after":{"type":"string","string":"dg=="}}`, []byte{}},
		"key":           {`{"v":1,"op":"d","key":"aw==","version":"01","origin":"live"}`, []byte("k")},
		"truncate":      {`{"v":1,"op":"t","version":"01","origin":"live","scope":{"partition":0,"partitions":1}}`, nil},
		"readme sample": {`{"v":1,"op":"r","key":"dXNlcjox","version":"0000000000000000000c3b3f1c4bd9e0","origin":"snapshot","after":{"type":"hash","expire_at_ms":1767225600000,"hash":[["bmFtZQ==","YWRh"],["YWdl","MzY="]]},"source":{"connector":"redis","name":"demo","db":0,"node":"127.0.0.1:16379","pos":"MTI4","ts_ms":1767225599000}}`, []byte("user:1")},
	} {
		t.Run(name, func(t *testing.T) {
			e, err := Decode([]byte(c.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if (e.Key == nil) != (c.key == nil) || !bytes.Equal(e.Key, c.key) {
				t.Fatalf("key = %#v, want %#v", e.Key, c.key)
			}
		})
	}
}

func TestVersionOrder(t *testing.T) {
	snap := ClockVersion(0, 100, false)
	live := ClockVersion(0, 100, true)
	later := ClockVersion(0, 101, false)
	nextEpoch := ClockVersion(1, 0, false)
	if !live.Newer(snap) || !later.Newer(live) || !nextEpoch.Newer(later) {
		t.Fatal("clock versions out of order")
	}
	seqs := []string{"0", "9", "10", "255", "256", "1000000000000000000000", "99999999999999999999999999999999999999999"}
	var prev Version
	for _, s := range seqs {
		v, err := SequenceVersion(7, s)
		if err != nil {
			t.Fatal(err)
		}
		if prev != nil && !v.Newer(prev) {
			t.Fatalf("sequence %s is not newer than the one before", s)
		}
		if v.Epoch() != 7 {
			t.Fatalf("epoch = %d", v.Epoch())
		}
		prev = v
	}
	if _, err := SequenceVersion(0, "-1"); err == nil {
		t.Fatal("negative sequence accepted")
	}
	p, err := ParseVersion(prev.String())
	if err != nil || p.Compare(prev) != 0 {
		t.Fatalf("ParseVersion round trip: %v", err)
	}
}

func TestScoreRoundTrip(t *testing.T) {
	for _, f := range []float64{0, -0.5, 1e-300, 5e-324, math.MaxFloat64, math.Inf(1), math.Inf(-1), floatSum, 3} {
		got, err := ParseScore(string(AppendScore(nil, f)))
		if err != nil || got != f {
			t.Fatalf("score %v → %q → %v, %v", f, AppendScore(nil, f), got, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, e := range sampleEvents() {
		b, err := Encode(nil, &e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"op":"d","key":"","version":"01","origin":"live"}`))
	f.Add([]byte(`{"v":1,"op":"d","version":"01","origin":"live"}`))
	f.Add([]byte(`{"v":1,"op":"t","key":"","version":"01","origin":"live","scope":{"partition":0,"partitions":1}}`))
	f.Add([]byte(`{"v":1,"op":"u","key":"aw==","version":"01","origin":"live","after":{"type":"item","item":{"a":{"L":[{"M":{"x":{"NULL":true}}}]}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("error does not wrap ErrDecode: %v", err)
			}
			return
		}
		// Whatever decodes must be a valid event that encodes and decodes
		// to the same thing.
		b, err := Encode(nil, &e)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		e2, err := Decode(b)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("decode/encode/decode changed the event:\n%#v\n%#v", e, e2)
		}
	})
}

func TestDiff(t *testing.T) {
	h1 := Value{Type: TypeHash, Hash: []Field{{Name: []byte("a"), Value: []byte("1")}, {Name: []byte("b"), Value: []byte("2")}}}
	h2 := Value{Type: TypeHash, Hash: []Field{{Name: []byte("b"), Value: []byte("2")}, {Name: []byte("a"), Value: []byte("1")}}}
	h3 := Value{Type: TypeHash, Hash: []Field{{Name: []byte("b"), Value: []byte("X")}, {Name: []byte("a"), Value: []byte("1")}}}
	s1 := Value{Type: TypeSet, Set: [][]byte{[]byte("x"), []byte("y")}}
	s2 := Value{Type: TypeSet, Set: [][]byte{[]byte("y"), []byte("x")}}
	l1 := Value{Type: TypeList, List: [][]byte{[]byte("x"), []byte("y")}}
	l2 := Value{Type: TypeList, List: [][]byte{[]byte("y"), []byte("x")}}
	z1 := Value{Type: TypeZSet, ZSet: []ScoredMember{{Member: []byte("m"), Score: 0}}}
	z1b := Value{Type: TypeZSet, ZSet: []ScoredMember{{Member: []byte("m"), Score: 0}}} // equal to z1, built apart
	z2 := Value{Type: TypeZSet, ZSet: []ScoredMember{{Member: []byte("m"), Score: math.Copysign(0, -1)}}}
	z3 := Value{Type: TypeZSet, ZSet: []ScoredMember{{Member: []byte("a"), Score: 1}, {Member: []byte("b"), Score: math.Nextafter(0.3, 1)}}}
	z4 := Value{Type: TypeZSet, ZSet: []ScoredMember{{Member: []byte("a"), Score: 1}, {Member: []byte("b"), Score: 0.3}}}
	z5 := Value{Type: TypeZSet, ZSet: []ScoredMember{{Member: []byte("a"), Score: 1}, {Member: []byte("c"), Score: 0.3}}}
	for _, c := range []struct {
		a, b  Value
		equal bool
	}{
		{h1, h2, true}, {h1, h3, false}, {s1, s2, true}, {l1, l2, false}, {l1, s1, false},
		{z1, z1b, true}, {z1, z2, false}, {z3, z4, false}, {z3, z5, false}, {z1, z3, false},
	} {
		if got := Diff(&c.a, &c.b) == ""; got != c.equal {
			t.Errorf("Diff(%v, %v) = %q, want equal=%v", c.a, c.b, Diff(&c.a, &c.b), c.equal)
		}
	}
}
