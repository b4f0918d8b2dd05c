package redis

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
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
	// "user:{userId}", "order:{userId}:{orderId}". It must name every key
	// attribute and only those. Empty: the key attributes joined by ":"
	// ("{userId}:{orderId}"). An item whose partition key holds the text
	// that follows it in the template cannot be told apart from another
	// item's key and is unmappable (see pipeline.KeyTemplate).
	KeyTemplate string
	// Format is FormatHash (default), FormatJSON or FormatDynamoDBJSON.
	Format string
	// Key is the source table's key schema, partition first. The default
	// template is made from it, and with it the sink can tell which item a
	// Redis key holds, which reconcile needs to find keys the table no
	// longer has.
	Key []KeyAttrSchema

	tmpl *pipeline.KeyTemplate
}

// KeyAttrSchema is a key attribute's name and type (S, N or B).
type KeyAttrSchema struct{ Name, Type string }

// Validate checks the format and the template's shape and, once the key
// schema is known, that the template names every key attribute and only
// those.
func (o ItemOptions) Validate() error {
	switch o.Format {
	case "", FormatHash, FormatJSON, FormatDynamoDBJSON:
	default:
		return fmt.Errorf("item format %q: want hash, json or dynamodb-json", o.Format)
	}
	if o.KeyTemplate == "" {
		return nil
	}
	t, err := pipeline.ParseKeyTemplate(o.KeyTemplate)
	if err != nil {
		return err
	}
	if len(o.Key) == 0 {
		return nil // the source table is not known yet
	}
	names := make([]string, len(o.Key))
	for i, k := range o.Key {
		names[i] = k.Name
	}
	if err := t.CheckKeyAttributes(names...); err != nil {
		return fmt.Errorf("%w (the source table's key is %s)", err, strings.Join(names, ", "))
	}
	return nil
}

// compile checks the options and parses the template (or makes the
// default one from Key).
func (o *ItemOptions) compile() error {
	if err := o.Validate(); err != nil {
		return err
	}
	text := o.KeyTemplate
	if text == "" {
		text = defaultTemplate(len(o.Key), func(i int) string { return o.Key[i].Name })
	}
	if text == "" {
		return nil // no template and no schema: each item key gets the default template of its own attributes
	}
	t, err := pipeline.ParseKeyTemplate(text)
	if err != nil {
		return err
	}
	o.tmpl = t
	return nil
}

// defaultTemplate is "{a}:{b}" for the n key attributes name(0)…
func defaultTemplate(n int, name func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "{" + name(i) + "}"
	}
	return strings.Join(parts, ":")
}

// itemKey renders the Redis key of an event whose key is a DynamoDB item
// key. It takes only item keys that parseKey gives back from the key it
// renders: attributes as DynamoDB has them (no empty S or B, numbers in
// DynamoDB's form), each named by the template, none holding the
// template's separator.
func (o *ItemOptions) itemKey(eventKey []byte) (string, error) {
	attrs, err := pipeline.DecodeItemKey(eventKey)
	if err != nil {
		return "", fmt.Errorf("%w: %w (the topic does not carry DynamoDB items: is the source configured as in the pipeline that wrote it?)",
			pipeline.ErrUnmappable, err)
	}
	tmpl := o.tmpl
	if tmpl == nil {
		if tmpl, err = pipeline.ParseKeyTemplate(defaultTemplate(len(attrs), func(i int) string { return attrs[i].Name })); err != nil {
			return "", fmt.Errorf("%w: item %s: %w", pipeline.ErrUnmappable, eventKey, err)
		}
	}
	text := make(map[string][]byte, len(attrs))
	for _, a := range attrs {
		if !slices.Contains(tmpl.Names(), a.Name) {
			return "", fmt.Errorf("%w: item %s: the key template %s does not name its key attribute %s, so items differing only in it would share one Redis key (is the source table the one the pipeline was set up for?)",
				pipeline.ErrUnmappable, eventKey, tmpl, a.Name)
		}
		if err := pipeline.CheckKeyAttr(a.Value); err != nil {
			return "", fmt.Errorf("%w: item %s: key attribute %s %w", pipeline.ErrUnmappable, eventKey, a.Name, err)
		}
		t, err := pipeline.KeyText(a.Value)
		if err != nil {
			return "", fmt.Errorf("%w: %w", pipeline.ErrUnmappable, err)
		}
		text[a.Name] = t
	}
	key, err := tmpl.Render(text)
	if err != nil {
		return "", fmt.Errorf("%w: item %s: %w", pipeline.ErrUnmappable, eventKey, err)
	}
	return string(key), nil
}

// parseKey is the inverse of itemKey: the item key a Redis key was
// rendered from, if the template matches it (see pipeline.KeyTemplate.Match)
// and its values are key attributes DynamoDB could hold.
func (o *ItemOptions) parseKey(redisKey string) ([]byte, bool) {
	if o.tmpl == nil || len(o.Key) == 0 {
		return nil, false
	}
	values, ok := o.tmpl.Match([]byte(redisKey))
	if !ok {
		return nil, false
	}
	key := make([]pipeline.KeyAttr, 0, len(o.Key))
	for _, k := range o.Key {
		v, ok := values[k.Name]
		if !ok {
			return nil, false // the template leaves this attribute out
		}
		a, err := pipeline.KeyAttrFromText(k.Type, v)
		if err != nil {
			return nil, false
		}
		key = append(key, pipeline.KeyAttr{Name: k.Name, Value: a})
	}
	return pipeline.EncodeItemKey(key), true
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
