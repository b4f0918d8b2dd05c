package pipeline

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

// Cutover issue 13, item 11: the default DynamoDB → Redis template
// {pk}:{sk} rendered the items ("a:b","c") and ("a","b:c") as one Redis key,
// a:b:c. Each write overwrote the other item, a delete of one removed both,
// and reconcile parsed the key back as ("a","b:c") only. Render now refuses
// a value that holds the text following its placeholder, so every rendered
// key belongs to exactly one item.
func TestKeyTemplateRenderRefusesTheSeparatorInAValue(t *testing.T) {
	tmpl, err := ParseKeyTemplate("{pk}:{sk}")
	if err != nil {
		t.Fatal(err)
	}
	good := map[string][]byte{"pk": []byte("a"), "sk": []byte("b:c")}
	key, err := tmpl.Render(good)
	if err != nil || string(key) != "a:b:c" {
		t.Fatalf("render (a, b:c): %q, %v", key, err)
	}
	bad := map[string][]byte{"pk": []byte("a:b"), "sk": []byte("c")}
	key, err = tmpl.Render(bad)
	if err == nil {
		t.Fatalf("(a:b, c) rendered as %q, the key of (a, b:c)", key)
	}
	for _, want := range []string{"pk", `":"`, "choose another separator"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}

	// A separator that overlaps itself: "x-" does not hold "--", but
	// "x-" + "--" + "y" reads back as ("x", "-y").
	tmpl, err = ParseKeyTemplate("{a}--{b}")
	if err != nil {
		t.Fatal(err)
	}
	if key, err := tmpl.Render(map[string][]byte{"a": []byte("x-"), "b": []byte("y")}); err == nil {
		t.Errorf("(x-, y) rendered as %q, the key of (x, -y)", key)
	}

	// The last placeholder is read up to the template's end: it may hold
	// any text, the template's literal text included.
	tmpl, err = ParseKeyTemplate("order:{userId}/{orderId}/")
	if err != nil {
		t.Fatal(err)
	}
	key, err = tmpl.Render(map[string][]byte{"userId": []byte("u1"), "orderId": []byte("a/b/")})
	if err != nil || string(key) != "order:u1/a/b//" {
		t.Fatalf("render: %q, %v", key, err)
	}
	if v, ok := tmpl.Match(key); !ok || string(v["userId"]) != "u1" || string(v["orderId"]) != "a/b/" {
		t.Fatalf("match %q: %q, %v", key, v, ok)
	}
}

// Two placeholders side by side cannot be read back: "{a}{b}" renders
// ("ab","c") and ("a","bc") alike. Such a template used to be accepted.
func TestKeyTemplateRefusesAdjacentPlaceholders(t *testing.T) {
	for _, text := range []string{"{a}{b}", "user:{a}{b}", "{a}{b}:x"} {
		_, err := ParseKeyTemplate(text)
		if err == nil {
			t.Errorf("template %q accepted", text)
			continue
		}
		if !strings.Contains(err.Error(), "{a}") || !strings.Contains(err.Error(), "{b}") || !strings.Contains(err.Error(), "between") {
			t.Errorf("template %q: %v, want an error naming {a} and {b} and saying to put text between them", text, err)
		}
	}
}

// For every key Render makes, Match gives back exactly the values
// rendered; for every key Match reads, Render makes that key again. Both
// together make the template a one-to-one mapping between the values it
// accepts and the keys it matches.
func TestKeyTemplateRenderAndMatchAgree(t *testing.T) {
	templates := []string{"{a}", "u:{a}", "{a}:", "{a}:{b}", "p{a}::{b}s", "{a}--{b}", "{a}-{b}-", "{a}aba{b}", "x{a}xx{b}x"}
	alphabet := []byte("ab:-xs")
	rng := rand.New(rand.NewPCG(13, 11))
	value := func() []byte {
		b := make([]byte, rng.IntN(6))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return b
	}
	for _, text := range templates {
		tmpl, err := ParseKeyTemplate(text)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for range 20000 {
			values := map[string][]byte{}
			for _, n := range tmpl.Names() {
				values[n] = value()
			}
			key, err := tmpl.Render(values)
			if err != nil {
				continue
			}
			got, ok := tmpl.Match(key)
			if !ok || !sameValues(got, values) {
				t.Fatalf("template %q: %q renders %q, which matches %q (%v)", text, values, key, got, ok)
			}
			id := string(bytes.Join([][]byte{values["a"], values["b"]}, []byte{0}))
			if other, dup := seen[string(key)]; dup && other != id {
				t.Fatalf("template %q: two value sets render %q", text, key)
			}
			seen[string(key)] = id
		}
		for range 20000 {
			key := value()
			if v, ok := tmpl.Match(key); ok {
				back, err := tmpl.Render(v)
				if err != nil || !bytes.Equal(back, key) {
					t.Fatalf("template %q: key %q matches %q, which renders %q, %v", text, key, v, back, err)
				}
			}
		}
	}
}

func sameValues(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// FuzzKeyTemplateMatch: a key from outside (a Redis target's SCAN, a
// source key under a rule) that matches renders back to itself.
func FuzzKeyTemplateMatch(f *testing.F) {
	f.Add("order:{userId}:{orderId}", []byte("order:a:b:c"))
	f.Add("{a}--{b}", []byte("x---y"))
	f.Add("{a}", []byte(""))
	f.Fuzz(func(t *testing.T, text string, key []byte) {
		tmpl, err := ParseKeyTemplate(text)
		if err != nil {
			return
		}
		v, ok := tmpl.Match(key)
		if !ok {
			return
		}
		back, err := tmpl.Render(v)
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("template %q: key %q matches %q, which renders %q, %v", text, key, v, back, err)
		}
	})
}

// A template that leaves out the sort key gives every item of a partition
// one key; one that names something else cannot be rendered at all.
func TestKeyTemplateCheckKeyAttributes(t *testing.T) {
	for _, c := range []struct {
		text string
		key  []string
		want string // "" for accepted
	}{
		{"order:{userId}:{orderId}", []string{"userId", "orderId"}, ""},
		{"{orderId}@{userId}", []string{"userId", "orderId"}, ""},
		{"user:{userId}", []string{"userId"}, ""},
		{"user:{userId}", []string{"userId", "orderId"}, "leaves out the key attribute orderId"},
		{"user:{region}:{userId}", []string{"userId"}, "names region, which is not a key attribute"},
	} {
		tmpl, err := ParseKeyTemplate(c.text)
		if err != nil {
			t.Fatal(err)
		}
		err = tmpl.CheckKeyAttributes(c.key...)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q for key %v: %v", c.text, c.key, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q for key %v: %v, want %q", c.text, c.key, err, c.want)
		}
	}
}
