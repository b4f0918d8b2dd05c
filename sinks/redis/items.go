package redis

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cutover/cutover/pipeline"
)

// Item formats: how a DynamoDB item is written to Redis.
const (
	// FormatHash writes a hash, one field per attribute: strings as they
	// are, numbers as their decimal text, binary as its bytes, booleans as
	// "true"/"false", null as "", and lists, maps and sets as JSON.
	FormatHash = "hash"
	// FormatJSON writes a string holding the item as plain JSON: numbers
	// as JSON numbers (exact decimal text), binary as base64 strings, sets
	// as arrays.
	FormatJSON = "json"
	// FormatDynamoDBJSON writes a string holding the item as DynamoDB
	// JSON, which keeps every type: the lossless choice.
	FormatDynamoDBJSON = "dynamodb-json"
)

// ItemOptions say how DynamoDB items become Redis keys and values.
type ItemOptions struct {
	// KeyTemplate builds the Redis key from the item's key attributes:
	// "user:{userId}", "order:{userId}:{orderId}". Empty: the key values
	// joined by ":".
	KeyTemplate string
	// Format is FormatHash (default), FormatJSON or FormatDynamoDBJSON.
	Format string
	// Key is the source table's key schema, partition first: with it the
	// sink can tell which item a Redis key holds (ItemKeyOf), which
	// reconcile needs to find keys the table no longer has.
	Key []KeyAttrSchema
}

// KeyAttrSchema is a key attribute's name and type (S, N or B).
type KeyAttrSchema struct{ Name, Type string }

// template is KeyTemplate, or the default: the key values joined by ":".
func (o ItemOptions) template() string {
	if o.KeyTemplate != "" {
		return o.KeyTemplate
	}
	parts := make([]string, len(o.Key))
	for i, k := range o.Key {
		parts[i] = "{" + k.Name + "}"
	}
	return strings.Join(parts, ":")
}

// parseKey is the inverse of itemKey: the item key a Redis key was
// rendered from, if the template matches it. A value holding the
// template's own separators can match more than one way; the first match
// is taken, with the earlier placeholders as short as they can be.
func (o ItemOptions) parseKey(redisKey string) ([]byte, bool) {
	tmpl := o.template()
	if len(o.Key) == 0 || tmpl == "" {
		return nil, false
	}
	var names []string
	re := "^"
	last := 0
	for _, m := range placeholder.FindAllStringSubmatchIndex(tmpl, -1) {
		re += regexp.QuoteMeta(tmpl[last:m[0]]) + "(.*?)"
		names = append(names, tmpl[m[2]:m[3]])
		last = m[1]
	}
	re += regexp.QuoteMeta(tmpl[last:]) + "$"
	rx, err := regexp.Compile("(?s)" + re)
	if err != nil {
		return nil, false
	}
	m := rx.FindStringSubmatch(redisKey)
	if m == nil {
		return nil, false
	}
	values := map[string]string{}
	for i, n := range names {
		if v, seen := values[n]; seen && v != m[i+1] {
			return nil, false
		}
		values[n] = m[i+1]
	}
	key := make([]pipeline.KeyAttr, 0, len(o.Key))
	for _, k := range o.Key {
		v, ok := values[k.Name]
		if !ok {
			return nil, false // the template leaves this attribute out
		}
		a := pipeline.Attr{Kind: pipeline.AttrS, S: v}
		switch k.Type {
		case "N":
			if _, err := strconv.ParseFloat(v, 64); err != nil {
				return nil, false
			}
			a = pipeline.Attr{Kind: pipeline.AttrN, N: v}
		case "B":
			a = pipeline.Attr{Kind: pipeline.AttrB, B: []byte(v)}
		}
		key = append(key, pipeline.KeyAttr{Name: k.Name, Value: a})
	}
	return pipeline.EncodeItemKey(key), true
}

var placeholder = regexp.MustCompile(`\{([^{}]+)\}`)

// Validate checks the template's shape.
func (o ItemOptions) Validate() error {
	switch o.Format {
	case "", FormatHash, FormatJSON, FormatDynamoDBJSON:
	default:
		return fmt.Errorf("item format %q: want hash, json or dynamodb-json", o.Format)
	}
	if o.KeyTemplate != "" && !placeholder.MatchString(o.KeyTemplate) {
		return fmt.Errorf("key template %q names no attribute: write attributes as {name}", o.KeyTemplate)
	}
	return nil
}

// itemKey renders the Redis key of an event whose key is a DynamoDB item
// key.
func (o ItemOptions) itemKey(eventKey []byte) (string, error) {
	attrs, err := pipeline.DecodeItemKey(eventKey)
	if err != nil {
		return "", err
	}
	text := map[string][]byte{}
	for _, a := range attrs {
		t, err := pipeline.KeyText(a.Value)
		if err != nil {
			return "", fmt.Errorf("%w: %w", pipeline.ErrUnmappable, err)
		}
		text[a.Name] = t
	}
	if o.KeyTemplate == "" {
		parts := make([][]byte, len(attrs))
		for i, a := range attrs {
			parts[i] = text[a.Name]
		}
		return string(bytes.Join(parts, []byte(":"))), nil
	}
	var missing []string
	out := placeholder.ReplaceAllStringFunc(o.KeyTemplate, func(m string) string {
		name := m[1 : len(m)-1]
		v, ok := text[name]
		if !ok {
			missing = append(missing, name)
		}
		return string(v)
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: the key template %q names %s, which is not a key attribute of the item (its key is %s)",
			pipeline.ErrUnmappable, o.KeyTemplate, strings.Join(missing, ", "), eventKey)
	}
	return out, nil
}

// itemValue turns an item into the Redis value of the chosen format.
func (o ItemOptions) itemValue(item map[string]pipeline.Attr) (pipeline.Value, error) {
	switch o.Format {
	case FormatJSON:
		b, err := json.Marshal(plainMap(item))
		if err != nil {
			return pipeline.Value{}, err
		}
		return pipeline.Value{Type: pipeline.TypeString, String: b}, nil
	case FormatDynamoDBJSON:
		return pipeline.Value{Type: pipeline.TypeString, String: pipeline.AppendItemJSON(nil, item)}, nil
	}
	names := make([]string, 0, len(item))
	for k := range item {
		names = append(names, k)
	}
	slices.Sort(names)
	v := pipeline.Value{Type: pipeline.TypeHash}
	for _, name := range names {
		a := item[name]
		var b []byte
		switch a.Kind {
		case pipeline.AttrS:
			b = []byte(a.S)
		case pipeline.AttrN:
			b = []byte(a.N)
		case pipeline.AttrB:
			b = a.B
		case pipeline.AttrBOOL:
			b = []byte(fmt.Sprint(a.BOOL))
		case pipeline.AttrNULL:
			b = []byte{}
		default:
			j, err := json.Marshal(plain(a))
			if err != nil {
				return pipeline.Value{}, err
			}
			b = j
		}
		v.Hash = append(v.Hash, pipeline.Field{Name: []byte(name), Value: b})
	}
	return v, nil
}

// plain is an attribute as plain JSON: numbers keep their exact text.
func plain(a pipeline.Attr) any {
	switch a.Kind {
	case pipeline.AttrS:
		return a.S
	case pipeline.AttrN:
		return json.Number(a.N)
	case pipeline.AttrB:
		return base64.StdEncoding.EncodeToString(a.B)
	case pipeline.AttrBOOL:
		return a.BOOL
	case pipeline.AttrL:
		l := make([]any, len(a.L))
		for i := range a.L {
			l[i] = plain(a.L[i])
		}
		return l
	case pipeline.AttrM:
		return plainMap(a.M)
	case pipeline.AttrSS:
		return a.SS
	case pipeline.AttrNS:
		l := make([]json.Number, len(a.NS))
		for i, n := range a.NS {
			l[i] = json.Number(n)
		}
		return l
	case pipeline.AttrBS:
		l := make([]string, len(a.BS))
		for i, b := range a.BS {
			l[i] = base64.StdEncoding.EncodeToString(b)
		}
		return l
	default:
		return nil
	}
}

func plainMap(m map[string]pipeline.Attr) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = plain(v)
	}
	return out
}

// Expect is what the target should hold for an event, in the target's own
// form: reconcile compares a DynamoDB item with it.
func (s *Sink) Expect(e *pipeline.Event) (pipeline.Value, error) {
	if s.opts.Items == nil || e.Value.Type != pipeline.TypeItem {
		return e.Value, nil
	}
	return s.opts.Items.itemValue(e.Value.Item)
}
