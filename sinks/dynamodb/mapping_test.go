package dynamodb

import (
	"errors"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/pipeline"
)

func testMapping(keyType types.ScalarAttributeType) *Mapping {
	o := Options{Table: "t", KeyType: string(keyType)}
	o.setDefaults()
	s, err := New(nil, o)
	if err != nil {
		panic(err)
	}
	return s.Mapping()
}

func sortedHash(h []pipeline.Field) []pipeline.Field {
	out := append([]pipeline.Field(nil), h...)
	sort.Slice(out, func(i, j int) bool { return string(out[i].Name) < string(out[j].Name) })
	return out
}

func TestMappingRoundTrip(t *testing.T) {
	bin := []byte{0, 0xff, 0xc3}
	// 0.1 + 0.2 in float64 arithmetic, a score that needs all 17 digits;
	// the constant expression 0.1 + 0.2 would be exactly 0.3.
	floatSum := math.Nextafter(0.3, 1)
	cases := map[string]struct {
		v        pipeline.Value
		wantAttr string // the type of the value attribute
	}{
		"string":                {pipeline.Value{Type: pipeline.TypeString, String: bin}, "B"},
		"empty string":          {pipeline.Value{Type: pipeline.TypeString, String: []byte{}}, "B"},
		"hash as map":           {pipeline.Value{Type: pipeline.TypeHash, Hash: []pipeline.Field{{Name: []byte("name"), Value: []byte("ada")}, {Name: []byte("ünï"), Value: bin}}}, "M"},
		"hash with empty name":  {pipeline.Value{Type: pipeline.TypeHash, Hash: []pipeline.Field{{Name: []byte{}, Value: []byte("x")}, {Name: []byte("a"), Value: []byte{}}}}, "L"},
		"hash with binary name": {pipeline.Value{Type: pipeline.TypeHash, Hash: []pipeline.Field{{Name: bin, Value: []byte("x")}}}, "L"},
		"list":                  {pipeline.Value{Type: pipeline.TypeList, List: [][]byte{[]byte("b"), []byte("a"), []byte{}, []byte("b")}}, "L"},
		"set":                   {pipeline.Value{Type: pipeline.TypeSet, Set: [][]byte{[]byte("a"), bin}}, "BS"},
		"set with empty member": {pipeline.Value{Type: pipeline.TypeSet, Set: [][]byte{[]byte("a"), {}}}, "L"},
		"zset": {pipeline.Value{Type: pipeline.TypeZSet, ZSet: []pipeline.ScoredMember{
			{Member: []byte("ninf"), Score: math.Inf(-1)}, {Member: []byte("neg"), Score: -1e300}, {Member: []byte("negzero"), Score: math.Copysign(0, -1)},
			{Member: []byte("zero"), Score: 0}, {Member: []byte("tiny"), Score: 5e-324}, {Member: bin, Score: floatSum},
			{Member: []byte("big"), Score: math.MaxFloat64}, {Member: []byte("inf"), Score: math.Inf(1)}}}, "L"},
	}
	m := testMapping(types.ScalarAttributeTypeB)
	exp := time.Unix(1767225600, 0)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := pipeline.Event{Key: bin, Op: pipeline.OpUpsert, Origin: pipeline.OriginSnapshot,
				Version: pipeline.ClockVersion(0, 42, false), Value: c.v, ExpireAt: exp.Add(-300 * time.Millisecond)}
			item, err := m.Item(&e, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			var got string
			switch item["value"].(type) {
			case *types.AttributeValueMemberB:
				got = "B"
			case *types.AttributeValueMemberM:
				got = "M"
			case *types.AttributeValueMemberL:
				got = "L"
			case *types.AttributeValueMemberBS:
				got = "BS"
			}
			if got != c.wantAttr {
				t.Fatalf("value stored as %s, want %s", got, c.wantAttr)
			}
			st, err := m.ValueFromItem(item)
			if err != nil {
				t.Fatal(err)
			}
			want := c.v
			if want.Type == pipeline.TypeHash {
				want.Hash, st.Value.Hash = sortedHash(want.Hash), sortedHash(st.Value.Hash)
			}
			if !reflect.DeepEqual(st.Value, want) {
				t.Fatalf("round trip changed the value\n got %#v\nwant %#v", st.Value, want)
			}
			for i, sm := range st.Value.ZSet {
				if math.Signbit(sm.Score) != math.Signbit(want.ZSet[i].Score) {
					t.Fatalf("score %d lost its sign", i)
				}
			}
			if !st.ExpireAt.Equal(exp) {
				t.Fatalf("expiry %v, want %v rounded up to the second (%v)", st.ExpireAt, e.ExpireAt, exp)
			}
			if st.Version.Compare(e.Version) != 0 || st.Deleted {
				t.Fatalf("version/deleted = %v %v", st.Version, st.Deleted)
			}
		})
	}
}

func TestMappingZSetScoresUseNWhenExact(t *testing.T) {
	for _, c := range []struct {
		f    float64
		kind string
	}{{1.5, "N"}, {0, "N"}, {-2, "N"}, {1e125, "N"}, {1e-130, "N"}, {1e126, "S"}, {1e-131, "S"}, {math.Inf(1), "S"}, {math.Copysign(0, -1), "S"}} {
		_, isN := scoreAV(c.f).(*types.AttributeValueMemberN)
		if (c.kind == "N") != isN {
			t.Errorf("score %v: N = %v, want %s", c.f, isN, c.kind)
		}
	}
}

func TestMappingKeysAndTombstones(t *testing.T) {
	s := testMapping(types.ScalarAttributeTypeS)
	e := pipeline.Event{Key: []byte{0xff}, Op: pipeline.OpUpsert, Origin: pipeline.OriginSnapshot,
		Version: pipeline.ClockVersion(0, 1, false), Value: pipeline.Value{Type: pipeline.TypeString, String: []byte("x")}}
	if _, err := s.Item(&e, time.Now()); !errors.Is(err, pipeline.ErrUnmappable) {
		t.Fatalf("binary key into an S key attribute: %v, want ErrUnmappable", err)
	}
	e.Key = nil
	if _, err := testMapping(types.ScalarAttributeTypeB).Item(&e, time.Now()); !errors.Is(err, pipeline.ErrUnmappable) {
		t.Fatalf("empty key: %v, want ErrUnmappable", err)
	}

	now := time.Unix(1000, 0)
	del := pipeline.Event{Key: []byte("gone"), Op: pipeline.OpDelete, Origin: pipeline.OriginLive, Version: pipeline.ClockVersion(0, 9, true)}
	item, err := s.Item(&del, now)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.ValueFromItem(item)
	if err != nil || !st.Deleted || st.Version.Compare(del.Version) != 0 {
		t.Fatalf("tombstone reads back as %+v, %v", st, err)
	}
	if n := item["expire_at"].(*types.AttributeValueMemberN).Value; n != "605800" {
		t.Fatalf("tombstone expires at %s, want now + 7 days = 605800", n)
	}
	if k := item["pk"].(*types.AttributeValueMemberS).Value; k != "gone" {
		t.Fatalf("key = %q", k)
	}
}

func TestOptionsRejectCollidingAttributes(t *testing.T) {
	if _, err := New(nil, Options{Table: "t", ValueAttribute: "pk"}); err == nil {
		t.Fatal("an options set writing two things to one attribute was accepted")
	}
	if _, err := New(nil, Options{Table: "t", KeyType: "N"}); err == nil {
		t.Fatal("key type N was accepted")
	}
}

// Redis accepts the empty key (SET "" v); a DynamoDB key attribute of type
// S or B cannot be empty. Every way a Redis key (or a key rendered from
// one) becomes a DynamoDB key attribute refuses it as unmappable — so it is
// dead-lettered with the reason — instead of sending an item DynamoDB
// rejects.
func TestMappingRefusesEmptyKeyAttributes(t *testing.T) {
	up := func(key []byte, v pipeline.Value) *pipeline.Event {
		return &pipeline.Event{Key: key, Op: pipeline.OpUpsert, Origin: pipeline.OriginSnapshot,
			Version: pipeline.ClockVersion(0, 1, false), Value: v}
	}
	str := pipeline.Value{Type: pipeline.TypeString, String: []byte("x")}
	for _, typ := range []types.ScalarAttributeType{types.ScalarAttributeTypeS, types.ScalarAttributeTypeB} {
		for _, op := range []pipeline.Op{pipeline.OpUpsert, pipeline.OpDelete} {
			e := up([]byte{}, str)
			e.Op = op
			_, err := testMapping(typ).Item(e, time.Now())
			if !errors.Is(err, pipeline.ErrUnmappable) || !strings.Contains(err.Error(), "empty key") ||
				!strings.Contains(err.Error(), "DynamoDB key attributes cannot be empty") {
				t.Errorf("key type %s, %s of the empty key: %v", typ, op, err)
			}
		}
	}

	// Rules: the template's text around an empty value.
	m := ruleMapping(t, Rule{Match: "*", Key: "order:{userId}:{orderId}"})
	for _, key := range []string{"order::1", "order:u1:", "order::"} {
		_, err := m.Item(up([]byte(key), hash("status", "paid")), time.Now())
		if !errors.Is(err, pipeline.ErrUnmappable) || !strings.Contains(err.Error(), "DynamoDB key attributes cannot be empty") {
			t.Errorf("rule key %q: %v", key, err)
		}
	}
	m = ruleMapping(t, Rule{Match: "*", Key: "{id}", KeyTypes: map[string]string{"id": "B"}})
	if _, err := m.Item(up([]byte{}, str), time.Now()); !errors.Is(err, pipeline.ErrUnmappable) ||
		!strings.Contains(err.Error(), "DynamoDB key attributes cannot be empty") {
		t.Errorf("rule {id}, the empty key: %v", err)
	}

	// Items (a DynamoDB source): an item key with an empty attribute is
	// not one DynamoDB gave.
	s, err := New(nil, Options{Table: "t", Items: true, KeyAttribute: "pk", KeyType: "S"})
	if err != nil {
		t.Fatal(err)
	}
	key := pipeline.EncodeItemKey([]pipeline.KeyAttr{{Name: "pk", Value: pipeline.Attr{Kind: pipeline.AttrS}}})
	if _, err := s.Mapping().Item(&pipeline.Event{Key: key, Op: pipeline.OpDelete, Version: pipeline.Version{1}}, time.Now()); !errors.Is(err, pipeline.ErrUnmappable) ||
		!strings.Contains(err.Error(), "DynamoDB key attributes cannot be empty") {
		t.Errorf("item key %s: %v", key, err)
	}
}
