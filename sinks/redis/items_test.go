package redis

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/cutover/cutover/pipeline"
)

func TestItemKeyTemplates(t *testing.T) {
	key := pipeline.EncodeItemKey([]pipeline.KeyAttr{
		{Name: "userId", Value: pipeline.Attr{Kind: pipeline.AttrS, S: "u:1"}},
		{Name: "orderId", Value: pipeline.Attr{Kind: pipeline.AttrN, N: "42"}},
	})
	schema := []KeyAttrSchema{{"userId", "S"}, {"orderId", "N"}}
	for _, tc := range []struct{ template, want string }{
		{"order:{userId}/{orderId}", "order:u:1/42"},
		{"{orderId}@{userId}", "42@u:1"},
	} {
		o := ItemOptions{KeyTemplate: tc.template, Key: schema}
		if err := o.compile(); err != nil {
			t.Fatal(err)
		}
		got, err := o.itemKey(key)
		if err != nil || got != tc.want {
			t.Fatalf("template %q: got %q, %v; want %q", tc.template, got, err, tc.want)
		}
		back, ok := o.parseKey(got)
		if !ok || string(back) != string(key) {
			t.Errorf("template %q: parse %q gave %s, %v; want %s", tc.template, got, back, ok, key)
		}
	}
	// The default template, {userId}:{orderId}, cannot render "u:1": see
	// TestItemKeyRefusesCollidingItems.
	o := ItemOptions{Key: schema}
	if err := o.compile(); err != nil {
		t.Fatal(err)
	}
	if got, err := o.itemKey(key); !errors.Is(err, pipeline.ErrUnmappable) {
		t.Errorf("the default template rendered (u:1, 42) as %q, %v", got, err)
	}
	o = ItemOptions{KeyTemplate: "order:{userId}/{orderId}", Key: schema}
	if err := o.compile(); err != nil {
		t.Fatal(err)
	}
	if _, ok := o.parseKey("order:u1/notanumber"); ok {
		t.Error("parsed a key whose number is not a number")
	}
}

func TestItemValueFormats(t *testing.T) {
	item := map[string]pipeline.Attr{
		"s": {Kind: pipeline.AttrS, S: "x"}, "n": {Kind: pipeline.AttrN, N: "1.50"}, "b": {Kind: pipeline.AttrB, B: []byte{0, 1}},
		"t": {Kind: pipeline.AttrBOOL, BOOL: true}, "z": {Kind: pipeline.AttrNULL},
		"l":  {Kind: pipeline.AttrL, L: []pipeline.Attr{{Kind: pipeline.AttrN, N: "12345678901234567890123456789012345678"}}},
		"ss": {Kind: pipeline.AttrSS, SS: []string{"a", "b"}},
	}
	h, err := ItemOptions{}.itemValue(item)
	if err != nil || h.Type != pipeline.TypeHash {
		t.Fatal(h, err)
	}
	want := map[string]string{"s": "x", "n": "1.50", "b": "\x00\x01", "t": "true", "z": "",
		"l": "[12345678901234567890123456789012345678]", "ss": `["a","b"]`}
	// Every attribute becomes exactly one field: a missing, extra or
	// repeated field fails, not only a wrong value.
	got := map[string]string{}
	for _, f := range h.Hash {
		if _, dup := got[string(f.Name)]; dup {
			t.Errorf("field %s appears twice", f.Name)
		}
		got[string(f.Name)] = string(f.Value)
	}
	if !maps.Equal(got, want) {
		t.Errorf("hash fields = %q, want %q", got, want)
	}
	j, err := ItemOptions{Format: FormatJSON}.itemValue(item)
	if err != nil || string(j.String) != `{"b":"AAE=","l":[12345678901234567890123456789012345678],"n":1.50,"s":"x","ss":["a","b"],"t":true,"z":null}` {
		t.Errorf("json: %s, %v", j.String, err)
	}
	d, err := ItemOptions{Format: FormatDynamoDBJSON}.itemValue(item)
	if err != nil {
		t.Fatal(err)
	}
	back, err := pipeline.ParseItemJSON(d.String)
	if err != nil {
		t.Fatal(err)
	}
	if diff := pipeline.Diff(&pipeline.Value{Type: pipeline.TypeItem, Item: item}, &pipeline.Value{Type: pipeline.TypeItem, Item: back}); diff != "" {
		t.Errorf("dynamodb-json does not round-trip: %s", diff)
	}
}

// Cutover issue 13, item 11: the default template {userId}:{orderId} gave
// the items ("a:b","c") and ("a","b:c") of a table with two S keys the
// same Redis key a:b:c; they overwrote each other and a delete of one
// removed both. The item whose partition key holds the separator is now
// unmappable (dead-lettered with the reason); the other keeps its key.
func TestItemKeyRefusesCollidingItems(t *testing.T) {
	item := func(pk, sk string) []byte {
		return pipeline.EncodeItemKey([]pipeline.KeyAttr{
			{Name: "pk", Value: pipeline.Attr{Kind: pipeline.AttrS, S: pk}},
			{Name: "sk", Value: pipeline.Attr{Kind: pipeline.AttrS, S: sk}},
		})
	}
	schema := []KeyAttrSchema{{"pk", "S"}, {"sk", "S"}}
	for _, o := range []ItemOptions{{Key: schema}, {}} { // the default template, and no schema at all
		if err := o.compile(); err != nil {
			t.Fatal(err)
		}
		got, err := o.itemKey(item("a", "b:c"))
		if err != nil || got != "a:b:c" {
			t.Fatalf("(a, b:c): %q, %v", got, err)
		}
		got, err = o.itemKey(item("a:b", "c"))
		if !errors.Is(err, pipeline.ErrUnmappable) {
			t.Fatalf("(a:b, c) rendered as %q, %v: want unmappable", got, err)
		}
		if !strings.Contains(err.Error(), "pk") || !strings.Contains(err.Error(), `":"`) {
			t.Errorf("error %q names neither the attribute nor the separator", err)
		}
	}
	o := ItemOptions{Key: schema}
	if err := o.compile(); err != nil {
		t.Fatal(err)
	}
	if back, ok := o.parseKey("a:b:c"); !ok || string(back) != string(item("a", "b:c")) {
		t.Errorf("a:b:c parses to %s, %v", back, ok)
	}
}

// A template that leaves out the sort key was accepted: every order of a
// user shared the user's key. It is refused before anything is written.
func TestItemOptionsRefuseATemplateWithoutEveryKeyAttribute(t *testing.T) {
	schema := []KeyAttrSchema{{"userId", "S"}, {"orderId", "N"}}
	for template, want := range map[string]string{
		"user:{userId}":          "leaves out the key attribute orderId",
		"{userId}:{orderId}:{x}": "names", // three placeholders: refused by the parser
		"u:{userId}:{region}":    "names region, which is not a key attribute",
		"{userId}{orderId}":      "between",
	} {
		o := ItemOptions{KeyTemplate: template, Key: schema}
		err := o.Validate()
		if err == nil {
			err = o.compile()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("template %q: %v, want %q", template, err, want)
		}
		if _, err := New(nil, Options{Items: &o}); err == nil {
			t.Errorf("template %q: the sink was made", template)
		}
	}
	// Without the schema (configuration time) only the shape is checked.
	if err := (ItemOptions{KeyTemplate: "user:{userId}"}).Validate(); err != nil {
		t.Errorf("shape only: %v", err)
	}
}

// DynamoDB never gives an empty S or B key attribute; an event claiming one
// is not an item key the template can render back, and is unmappable. The
// same goes for a key number in another form than DynamoDB's.
func TestItemKeyRefusesEmptyKeyAttributes(t *testing.T) {
	o := ItemOptions{Key: []KeyAttrSchema{{"pk", "S"}}}
	if err := o.compile(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []pipeline.Attr{{Kind: pipeline.AttrS}, {Kind: pipeline.AttrB, B: []byte{}}, {Kind: pipeline.AttrN, N: "01"}} {
		key := pipeline.EncodeItemKey([]pipeline.KeyAttr{{Name: "pk", Value: a}})
		if got, err := o.itemKey(key); !errors.Is(err, pipeline.ErrUnmappable) {
			t.Errorf("%s: rendered %q, %v; want unmappable", key, got, err)
		}
	}
	if _, err := o.itemKey([]byte("not an item key")); !errors.Is(err, pipeline.ErrUnmappable) {
		t.Errorf("a Redis key as an item key: %v, want unmappable", err)
	}
	if _, ok := o.parseKey(""); ok {
		t.Error("the empty Redis key parsed as an item with an empty key attribute")
	}
}
