package redis

import (
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
		{"", "u:1:42"},
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
		if tc.template == "" {
			// "u:1:42" splits at the first ':' — the documented ambiguity.
			continue
		}
		if !ok || string(back) != string(key) {
			t.Errorf("template %q: parse %q gave %s, %v; want %s", tc.template, got, back, ok, key)
		}
	}
	o := ItemOptions{KeyTemplate: "user:{userId}:{region}", Key: schema}
	if err := o.compile(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.itemKey(key); err == nil {
		t.Error("a template naming a non-key attribute rendered")
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
	for _, f := range h.Hash {
		if want[string(f.Name)] != string(f.Value) {
			t.Errorf("field %s = %q, want %q", f.Name, f.Value, want[string(f.Name)])
		}
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
