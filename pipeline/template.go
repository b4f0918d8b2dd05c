package pipeline

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// KeyTemplate maps between a Redis key and the attributes of a DynamoDB
// primary key: "user:{userId}" holds one attribute, "order:{userId}:{orderId}"
// two. Text outside the braces is literal.
//
// The mapping is one-to-one, so distinct items never share a Redis key and
// distinct Redis keys never share an item:
//
//   - Match reads a key back at the first occurrence of the text between
//     the placeholders (the separator); the last placeholder takes the rest
//     up to the template's closing text.
//   - Render refuses a value that would break that reading: one that holds
//     its separator, or ends with the start of it ("x-" before "--").
//     Escaping instead would change the key names users expect.
//   - Two placeholders with nothing between them cannot be read back at all;
//     ParseKeyTemplate refuses them.
//
// So for every key Render makes, Match gives back exactly the values
// rendered, and every key Match reads renders back to itself.
type KeyTemplate struct {
	text  string
	names []string
	// lits[0] is the text before names[0]; lits[i+1] the text after
	// names[i]. len(lits) == len(names)+1.
	lits []string
}

var placeholder = regexp.MustCompile(`\{([^{}]+)\}`)

// ParseKeyTemplate reads a template. It must name one or two distinct
// attributes, with literal text between them.
func ParseKeyTemplate(text string) (*KeyTemplate, error) {
	t := &KeyTemplate{text: text}
	last := 0
	for _, m := range placeholder.FindAllStringSubmatchIndex(text, -1) {
		name := text[m[2]:m[3]]
		for _, n := range t.names {
			if n == name {
				return nil, fmt.Errorf("key template %q names {%s} twice", text, name)
			}
		}
		t.names = append(t.names, name)
		t.lits = append(t.lits, text[last:m[0]])
		last = m[1]
	}
	t.lits = append(t.lits, text[last:])
	if len(t.names) == 0 || len(t.names) > 2 {
		return nil, fmt.Errorf("key template %q names %d attributes: write one or two key attributes as {name}, e.g. user:{userId}", text, len(t.names))
	}
	if strings.ContainsAny(text[last:], "{}") || strings.Count(text, "{") != len(t.names) {
		return nil, fmt.Errorf("key template %q has an unbalanced brace", text)
	}
	for i := 1; i < len(t.names); i++ {
		if t.lits[i] == "" {
			return nil, fmt.Errorf("key template %q puts {%s} and {%s} side by side, so a key cannot be read back into its attributes: put literal text between them, e.g. {%s}:{%s}",
				text, t.names[i-1], t.names[i], t.names[i-1], t.names[i])
		}
	}
	return t, nil
}

// String is the template's text.
func (t *KeyTemplate) String() string { return t.text }

// Names are the attributes the template names, in its order.
func (t *KeyTemplate) Names() []string { return t.names }

// CheckKeyAttributes reports whether the template names exactly the key
// attributes key (a table's partition key, then its sort key if any). A
// template that leaves one out would give items that differ only in it one
// Redis key; one naming another attribute cannot be rendered from a key.
func (t *KeyTemplate) CheckKeyAttributes(key ...string) error {
	for _, n := range t.names {
		if !slices.Contains(key, n) {
			return fmt.Errorf("key template %q names %s, which is not a key attribute (the key is %s): a template may only name key attributes",
				t.text, n, strings.Join(key, ", "))
		}
	}
	for _, k := range key {
		if !slices.Contains(t.names, k) {
			return fmt.Errorf("key template %q leaves out the key attribute %s, so items that differ only in %s would share one key: name every key attribute, e.g. %q",
				t.text, k, k, t.text+":{"+k+"}")
		}
	}
	return nil
}

// Render builds the key from the attributes' text. It refuses a value
// Match could not read back as it was (see KeyTemplate).
func (t *KeyTemplate) Render(values map[string][]byte) ([]byte, error) {
	var missing []string
	for _, n := range t.names {
		if _, ok := values[n]; !ok {
			missing = append(missing, "{"+n+"}")
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("key template %q needs %s, which the key does not have", t.text, strings.Join(missing, ", "))
	}
	for i, n := range t.names[:len(t.names)-1] {
		if err := t.checkSeparator(n, values[n], t.lits[i+1]); err != nil {
			return nil, err
		}
	}
	out := []byte(t.lits[0])
	for i, n := range t.names {
		out = append(out, values[n]...)
		out = append(out, t.lits[i+1]...)
	}
	return out, nil
}

// checkSeparator refuses a value v of attribute name that Match would cut
// short: the first sep in v+sep must be the one that follows v.
func (t *KeyTemplate) checkSeparator(name string, v []byte, sep string) error {
	joined := append(append(make([]byte, 0, len(v)+len(sep)), v...), sep...)
	if bytes.Index(joined, []byte(sep)) == len(v) {
		return nil
	}
	how := "holds"
	if !bytes.Contains(v, []byte(sep)) {
		how = "ends with the start of"
	}
	return fmt.Errorf("key attribute %s is %q, which %s %q, the text that follows {%s} in the key template %q: "+
		"the key would not tell where %s ends and could be another item's (choose another separator in the template, one that %s never holds)",
		name, v, how, sep, name, t.text, name, name)
}

// Match reads the attributes' text back from a key; ok is false when the
// key does not have the template's shape. The first placeholder ends at
// the first occurrence of the text that follows it, so a key has at most
// one reading, and it is the one Render made.
func (t *KeyTemplate) Match(key []byte) (values map[string][]byte, ok bool) {
	head, tail := t.lits[0], t.lits[len(t.lits)-1]
	if len(key) < len(head)+len(tail) || !bytes.HasPrefix(key, []byte(head)) || !bytes.HasSuffix(key, []byte(tail)) {
		return nil, false
	}
	mid := key[len(head) : len(key)-len(tail) : len(key)-len(tail)]
	values = make(map[string][]byte, len(t.names))
	if len(t.names) == 1 {
		values[t.names[0]] = mid
		return values, true
	}
	sep := t.lits[1]
	i := bytes.Index(mid, []byte(sep))
	if i < 0 {
		return nil, false
	}
	values[t.names[0]] = mid[:i:i]
	values[t.names[1]] = mid[i+len(sep):]
	return values, true
}
