package pipeline

import (
	"strings"
	"testing"
)

func TestKeyTemplate(t *testing.T) {
	tmpl, err := ParseKeyTemplate("order:{userId}:{orderId}")
	if err != nil {
		t.Fatal(err)
	}
	key, err := tmpl.Render(map[string][]byte{"userId": []byte("u\xff1"), "orderId": []byte("42")})
	if err != nil || string(key) != "order:u\xff1:42" {
		t.Fatalf("render: %q, %v", key, err)
	}
	v, ok := tmpl.Match(key)
	if !ok || string(v["userId"]) != "u\xff1" || string(v["orderId"]) != "42" {
		t.Fatalf("match: %q, %v", v, ok)
	}
	if _, ok := tmpl.Match([]byte("user:1")); ok {
		t.Error("matched a key of another shape")
	}
	if _, err := tmpl.Render(map[string][]byte{"userId": []byte("u")}); err == nil || !strings.Contains(err.Error(), "{orderId}") {
		t.Errorf("render without orderId: %v", err)
	}
	for _, bad := range []string{"user", "{a}{b}{c}", "{a}:{a}", "user:{id", "user:id}"} {
		if _, err := ParseKeyTemplate(bad); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
}
