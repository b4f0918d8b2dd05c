package redis

import (
	"bytes"
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
	// "user:{userId}", "order:{userId}:{orderId}". Empty: the key values
	// joined by ":".
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

// Validate checks the format and the template's shape.
func (o ItemOptions) Validate() error {
	switch o.Format {
	case "", FormatHash, FormatJSON, FormatDynamoDBJSON:
	default:
		return fmt.Errorf("item format %q: want hash, json or dynamodb-json", o.Format)
	}
	if o.KeyTemplate != "" {
		if _, err := pipeline.ParseKeyTemplate(o.KeyTemplate); err != nil {
			return err
		}
	}
	return nil
}

// compile parses the template (or makes the default one from Key).
func (o *ItemOptions) compile() error {
	text := o.KeyTemplate
	if text == "" {
		parts := make([]string, len(o.Key))
		for i, k := range o.Key {
			parts[i] = "{" + k.Name + "}"
		}
		text = strings.Join(parts, ":")
	}
	if text == "" {
		return nil // no template and no schema: keys render as their values joined by ":"
	}
	t, err := pipeline.ParseKeyTemplate(text)
	if err != nil {
		return err
	}
	o.tmpl = t
	return nil
}

// itemKey renders the Redis key of an event whose key is a DynamoDB item
// key.
func (o *ItemOptions) itemKey(eventKey []byte) (string, error) {
	attrs, err := pipeline.DecodeItemKey(eventKey)
	if err != nil {
		return "", err
	}
	text := map[string][]byte{}
	parts := make([][]byte, 0, len(attrs))
	for _, a := range attrs {
		t, err := pipeline.KeyText(a.Value)
		if err != nil {
			return "", fmt.Errorf("%w: %w", pipeline.ErrUnmappable, err)
		}
		text[a.Name] = t
		parts = append(parts, t)
	}
	if o.tmpl == nil {
		return string(bytes.Join(parts, []byte(":"))), nil
	}
	key, err := o.tmpl.Render(text)
	if err != nil {
		return "", fmt.Errorf("%w: item %s: %w (a key template may only name key attributes)", pipeline.ErrUnmappable, eventKey, err)
	}
	return string(key), nil
}

// parseKey is the inverse of itemKey: the item key a Redis key was
// rendered from, if the template matches it (see pipeline.KeyTemplate.Match).
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
