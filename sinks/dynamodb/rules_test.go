package dynamodb

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/pipeline"
)

func ruleMapping(t *testing.T, r Rule) *Mapping {
	t.Helper()
	s, err := New(nil, Options{Table: "t", Rule: &r})
	if err != nil {
		t.Fatal(err)
	}
	return s.Mapping()
}

func hash(kv ...string) pipeline.Value {
	v := pipeline.Value{Type: pipeline.TypeHash}
	for i := 0; i < len(kv); i += 2 {
		v.Hash = append(v.Hash, pipeline.Field{Name: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return v
}

func TestRuleMapsHashesToNaturalItems(t *testing.T) {
	m := ruleMapping(t, Rule{Match: "order:*", Key: "order:{userId}:{orderId}", KeyTypes: map[string]string{"orderId": "N"},
		Fields: map[string]string{"total": FieldNumber, "blob": FieldBinary, "lines": FieldJSON}})
	exp := time.Unix(1_900_000_000, 500)
	e := pipeline.Event{Key: []byte("order:u1:42"), Op: pipeline.OpUpsert, Version: pipeline.Version{1}, ExpireAt: exp,
		Value: hash("status", "paid", "total", "12.50", "blob", "\x00\xff", "lines", `[{"sku":"a","qty":2},null,true]`, "userId", "u1")}
	item, err := m.Item(&e, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"userId": "S", "orderId": "N", "status": "S", "total": "N", "blob": "B", "lines": "L",
		"cutover_version": "B", "expire_at": "N"}
	if len(item) != len(want) {
		t.Fatalf("item has %d attributes, want %d: %v", len(item), len(want), item)
	}
	for name, typ := range want {
		if got := avType(item[name]); got != typ {
			t.Errorf("%s is %s, want %s", name, got, typ)
		}
	}
	if n := item["expire_at"].(*types.AttributeValueMemberN).Value; n != "1900000001" {
		t.Errorf("expire_at %s, want the expiry rounded up", n)
	}
	key, err := m.ItemKey(item)
	if err != nil || string(key) != "order:u1:42" {
		t.Errorf("the item's key renders as %q, %v", key, err)
	}
	// What reconcile expects is what Lookup reads back.
	want2, err := m.Expect(&e)
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.ValueFromItem(item)
	if err != nil {
		t.Fatal(err)
	}
	if d := pipeline.Diff(&want2, &st.Value); d != "" || !st.ExpireAt.Equal(time.Unix(1_900_000_001, 0)) {
		t.Errorf("read back: %s, expiry %v", d, st.ExpireAt)
	}

	for name, v := range map[string]pipeline.Value{
		"not a number":     hash("total", "12,5"),
		"not json":         hash("lines", "{"),
		"binary as string": hash("note", "\xff"),
		"empty field name": hash("", "x"),
		"key disagrees":    hash("userId", "u2"),
		"own attribute":    hash("cutover_version", "x"),
		"a list":           {Type: pipeline.TypeList, List: [][]byte{[]byte("x")}},
	} {
		e := pipeline.Event{Key: []byte("order:u1:42"), Op: pipeline.OpUpsert, Version: pipeline.Version{1}, Value: v}
		if _, err := m.Item(&e, time.Now()); !errors.Is(err, pipeline.ErrUnmappable) {
			t.Errorf("%s: %v, want unmappable", name, err)
		}
	}
	for _, key := range []string{"user:1", "order:u1:x", "order::1"} {
		e := pipeline.Event{Key: []byte(key), Op: pipeline.OpDelete, Version: pipeline.Version{1}}
		if _, err := m.Item(&e, time.Now()); !errors.Is(err, pipeline.ErrUnmappable) {
			t.Errorf("key %q: %v, want unmappable", key, err)
		}
	}
}

func TestRuleStringsAndTombstones(t *testing.T) {
	m := ruleMapping(t, Rule{Match: "session:*", Key: "session:{id}", ValueAttribute: "token"})
	e := pipeline.Event{Key: []byte("session:abc"), Op: pipeline.OpUpsert, Version: pipeline.Version{2},
		Value: pipeline.Value{Type: pipeline.TypeString, String: []byte("t0k")}}
	item, err := m.Item(&e, time.Now())
	if err != nil || item["token"].(*types.AttributeValueMemberS).Value != "t0k" || item["id"].(*types.AttributeValueMemberS).Value != "abc" {
		t.Fatalf("string: %v, %v", item, err)
	}
	del := pipeline.Event{Key: []byte("session:abc"), Op: pipeline.OpDelete, Version: pipeline.Version{3}}
	tomb, err := m.Item(&del, time.Now())
	if err != nil || len(tomb) != 4 || tomb["cutover_deleted"] == nil {
		t.Fatalf("tombstone: %v, %v", tomb, err)
	}
}

func TestRuleValidation(t *testing.T) {
	for _, r := range []Rule{
		{Key: "user:{id}"},
		{Match: "user:*", Key: "user"},
		{Match: "user:*", Key: "user:{id}", KeyTypes: map[string]string{"other": "S"}},
		{Match: "user:*", Key: "user:{id}", KeyTypes: map[string]string{"id": "X"}},
		{Match: "user:*", Key: "user:{id}", Fields: map[string]string{"age": "int"}},
	} {
		if err := r.Validate(); err == nil {
			t.Errorf("rule %+v accepted", r)
		}
	}
	if _, err := New(nil, Options{Table: "t", Rule: &Rule{Match: "u:*", Key: "u:{id}", ValueAttribute: "cutover_version"}}); err == nil ||
		!strings.Contains(err.Error(), "two purposes") {
		t.Errorf("a value attribute named like the version attribute: %v", err)
	}
}

func avType(av types.AttributeValue) string {
	switch av.(type) {
	case *types.AttributeValueMemberS:
		return "S"
	case *types.AttributeValueMemberN:
		return "N"
	case *types.AttributeValueMemberB:
		return "B"
	case *types.AttributeValueMemberL:
		return "L"
	case *types.AttributeValueMemberM:
		return "M"
	case nil:
		return "absent"
	}
	return "other"
}

// Cutover issue 13, item 11: under the rule user:{id} with id of type N,
// the Redis keys user:1, user:01 and user:1.0 all wrote the one item id=1
// (DynamoDB keeps a number in one form), so they overwrote each other and
// a delete of one removed the item of the others. Only the form DynamoDB
// returns maps now; the others are unmappable, with a reason naming the
// form DynamoDB would store.
func TestRuleRefusesNumberKeysInAnotherForm(t *testing.T) {
	m := ruleMapping(t, Rule{Match: "user:*", Key: "user:{id}", KeyTypes: map[string]string{"id": "N"}})
	up := func(key string) *pipeline.Event {
		return &pipeline.Event{Key: []byte(key), Op: pipeline.OpUpsert, Version: pipeline.Version{1}, Value: hash("name", key)}
	}
	item, err := m.Item(up("user:1"), time.Now())
	if err != nil || item["id"].(*types.AttributeValueMemberN).Value != "1" {
		t.Fatalf("user:1: %v, %v", item, err)
	}
	for _, key := range []string{"user:01", "user:1.0", "user:+1", "user:1e0", "user:-0"} {
		_, err := m.Item(up(key), time.Now())
		if !errors.Is(err, pipeline.ErrUnmappable) {
			t.Errorf("%s: %v, want unmappable", key, err)
			continue
		}
		form := strings.TrimPrefix(key, "user:")
		if !strings.Contains(err.Error(), "key attribute id is a number in non-canonical form "+form+"; DynamoDB stores it as ") {
			t.Errorf("%s: %v", key, err)
		}
	}
	// A delete is refused alike: it would remove user:1's item.
	del := pipeline.Event{Key: []byte("user:01"), Op: pipeline.OpDelete, Version: pipeline.Version{2}}
	if _, err := m.Item(&del, time.Now()); !errors.Is(err, pipeline.ErrUnmappable) {
		t.Errorf("delete user:01: %v, want unmappable", err)
	}
	// Reconcile asks for a key's item and gets it back under the same key.
	if k, err := m.ItemKey(item); err != nil || string(k) != "user:1" {
		t.Errorf("the item of user:1 reads back as %q, %v", k, err)
	}
}

// The template reads a key back at the first separator, so each Redis key
// is exactly one item: order:a:b:c is (a, b:c), never also (a:b, c). An
// item written by someone else whose partition key holds the separator has
// no Redis key: ItemKey says so instead of naming another item's key.
func TestRuleKeysAreOneToOne(t *testing.T) {
	m := ruleMapping(t, Rule{Match: "order:*", Key: "order:{userId}:{orderId}"})
	e := pipeline.Event{Key: []byte("order:a:b:c"), Op: pipeline.OpUpsert, Version: pipeline.Version{1}, Value: hash("status", "paid")}
	item, err := m.Item(&e, time.Now())
	if err != nil || item["userId"].(*types.AttributeValueMemberS).Value != "a" || item["orderId"].(*types.AttributeValueMemberS).Value != "b:c" {
		t.Fatalf("order:a:b:c: %v, %v", item, err)
	}
	if k, err := m.ItemKey(item); err != nil || string(k) != "order:a:b:c" {
		t.Errorf("reads back as %q, %v", k, err)
	}
	foreign := map[string]types.AttributeValue{"userId": &types.AttributeValueMemberS{Value: "a:b"}, "orderId": &types.AttributeValueMemberS{Value: "c"}}
	if k, err := m.ItemKey(foreign); err == nil {
		t.Errorf("the item (a:b, c) reads back as %q, the key of (a, b:c)", k)
	}
	if err := (&Rule{Match: "order:*", Key: "order:{userId}{orderId}"}).Validate(); err == nil || !strings.Contains(err.Error(), "between") {
		t.Errorf("a template with its placeholders side by side: %v", err)
	}
}
