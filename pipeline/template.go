package pipeline

import (
	"fmt"
	"regexp"
	"strings"
)

// KeyTemplate maps between a Redis key and the attributes of a DynamoDB
// primary key: "user:{userId}" holds one attribute, "order:{userId}:{orderId}"
// two. Text outside the braces is literal.
type KeyTemplate struct {
	text  string
	names []string
	re    *regexp.Regexp
}

var placeholder = regexp.MustCompile(`\{([^{}]+)\}`)

// ParseKeyTemplate reads a template. It must name one or two distinct
// attributes.
func ParseKeyTemplate(text string) (*KeyTemplate, error) {
	t := &KeyTemplate{text: text}
	re := "(?s)^"
	last := 0
	for _, m := range placeholder.FindAllStringSubmatchIndex(text, -1) {
		name := text[m[2]:m[3]]
		for _, n := range t.names {
			if n == name {
				return nil, fmt.Errorf("key template %q names {%s} twice", text, name)
			}
		}
		t.names = append(t.names, name)
		re += regexp.QuoteMeta(text[last:m[0]]) + "(.*?)"
		last = m[1]
	}
	if len(t.names) == 0 || len(t.names) > 2 {
		return nil, fmt.Errorf("key template %q names %d attributes: write one or two key attributes as {name}, e.g. user:{userId}", text, len(t.names))
	}
	if strings.ContainsAny(text[last:], "{}") || strings.Count(text, "{") != len(t.names) {
		return nil, fmt.Errorf("key template %q has an unbalanced brace", text)
	}
	t.re = regexp.MustCompile(re + regexp.QuoteMeta(text[last:]) + "$")
	return t, nil
}

// String is the template's text.
func (t *KeyTemplate) String() string { return t.text }

// Names are the attributes the template names, in its order.
func (t *KeyTemplate) Names() []string { return t.names }

// Render builds the key from the attributes' text.
func (t *KeyTemplate) Render(values map[string][]byte) ([]byte, error) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(t.text, func(m string) string {
		v, ok := values[m[1:len(m)-1]]
		if !ok {
			missing = append(missing, m)
		}
		return string(v)
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("key template %q needs %s, which the key does not have", t.text, strings.Join(missing, ", "))
	}
	return []byte(out), nil
}

// Match reads the attributes' text back from a key; ok is false when the
// key does not have the template's shape. A value holding the template's
// own literal text can match more than one way: the earlier placeholder
// then takes the shortest text it can.
func (t *KeyTemplate) Match(key []byte) (values map[string][]byte, ok bool) {
	m := t.re.FindSubmatchIndex(key)
	if m == nil {
		return nil, false
	}
	values = make(map[string][]byte, len(t.names))
	for i, n := range t.names {
		values[n] = key[m[2+2*i]:m[3+2*i]]
	}
	return values, true
}
