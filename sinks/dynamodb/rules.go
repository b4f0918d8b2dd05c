package dynamodb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/dynamoattr"
)

// Field types of a rule: how a Redis hash field (or a string's value)
// becomes an attribute.
const (
	FieldString = "string" // S; the bytes must be UTF-8
	FieldNumber = "number" // N; the text must be a number
	FieldBinary = "binary" // B; any bytes
	FieldJSON   = "json"   // the JSON document as DynamoDB types: M, L, S, N, BOOL, NULL
)

// Rule maps the Redis keys that match a pattern to natural items of their
// own table: "user:{userId}" becomes partition key userId, the hash's
// fields become attributes.
type Rule struct {
	// Match is a Redis glob pattern ("user:*"); the first rule whose
	// pattern matches a key takes it.
	Match string
	// Key is the key template: "user:{userId}", or with a sort key
	// "order:{userId}:{orderId}". Its attributes must be the table's key,
	// with literal text between them. A key is read at the first
	// separator ("order:a:b:c" is userId a, orderId "b:c"), so each Redis
	// key is one item. A key whose attribute would be empty, or a number
	// in another form than DynamoDB stores ("01", "1.0", "1e0" for 1), is
	// dead-lettered: written, it would be refused, or be another key's
	// item (see pipeline.KeyAttrFromText).
	Key string
	// KeyTypes are the key attributes' types (S, N or B) when the sink
	// creates the table; default S. An existing table's own types apply.
	KeyTypes map[string]string
	// Fields give a hash field's type (FieldString, FieldNumber,
	// FieldBinary, FieldJSON); other fields are strings.
	Fields map[string]string
	// ValueAttribute holds a Redis string's value; empty takes the sink's
	// Options.ValueAttribute (the CLI's sink.dynamodb.attributes.value).
	ValueAttribute string
}

// Validate checks a rule's shape.
func (r *Rule) Validate() error {
	if r.Match == "" {
		return errors.New("match: required (a Redis glob pattern such as user:*)")
	}
	t, err := pipeline.ParseKeyTemplate(r.Key)
	if err != nil {
		return err
	}
	for name, typ := range r.KeyTypes {
		if !slices.Contains(t.Names(), name) {
			return fmt.Errorf("key_types names %s, which the key template %q does not", name, r.Key)
		}
		if typ != "S" && typ != "N" && typ != "B" {
			return fmt.Errorf("key_types: %s is %q: want S, N or B", name, typ)
		}
	}
	for name, typ := range r.Fields {
		switch typ {
		case FieldString, FieldNumber, FieldBinary, FieldJSON:
		default:
			return fmt.Errorf("fields: %s is %q: want string, number, binary or json", name, typ)
		}
	}
	return nil
}

// ruleItem builds the attributes of a Redis value under the mapping's
// rule (the key attributes and cutover's own are added by Item).
func (m *Mapping) ruleItem(e *pipeline.Event, item map[string]types.AttributeValue) error {
	reserved := func(name string) error {
		switch name {
		case "":
			return errors.New("a field with an empty name cannot be an attribute")
		case m.VersionAttribute, m.DeletedAttribute, m.TTLAttribute:
			return fmt.Errorf("field %q has the name of cutover's own attribute; rename it in the sink's attributes settings", name)
		}
		return nil
	}
	put := func(name string, value []byte) error {
		if err := reserved(name); err != nil {
			return err
		}
		if key, isKey := item[name]; isKey {
			// A field repeating a key attribute must agree with the key.
			if !attrTextEqual(key, value) {
				return fmt.Errorf("field %q is %q, but the key says otherwise", name, value)
			}
			return nil
		}
		av, err := fieldAV(m.Fields[name], value)
		if err != nil {
			return fmt.Errorf("field %q: %w", name, err)
		}
		item[name] = av
		return nil
	}
	switch e.Value.Type {
	case pipeline.TypeHash:
		for _, f := range e.Value.Hash {
			if err := put(string(f.Name), f.Value); err != nil {
				return err
			}
		}
	case pipeline.TypeString:
		return put(m.ValueAttribute, e.Value.String)
	default:
		return fmt.Errorf("the rule for %s maps hashes and strings; this key is a %s (exclude it, or give such keys a table without rules)",
			m.Template, e.Value.Type)
	}
	return nil
}

// attrTextEqual reports whether a key attribute's text is b.
func attrTextEqual(av types.AttributeValue, b []byte) bool {
	t, err := pipeline.KeyText(dynamoattr.From(av))
	return err == nil && bytes.Equal(t, b)
}

// fieldAV converts a field's bytes to an attribute of its declared type.
func fieldAV(typ string, b []byte) (types.AttributeValue, error) {
	switch typ {
	case FieldNumber:
		if !pipeline.IsNumber(string(b)) {
			return nil, fmt.Errorf("%q is not a number (declared number)", b)
		}
		return &types.AttributeValueMemberN{Value: string(b)}, nil
	case FieldBinary:
		return &types.AttributeValueMemberB{Value: nonNil(b)}, nil
	case FieldJSON:
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not JSON (declared json): %w", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, errors.New("not one JSON document (declared json)")
		}
		return jsonAV(v), nil
	default:
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("%q is not UTF-8 text: declare the field binary", b)
		}
		return &types.AttributeValueMemberS{Value: string(b)}, nil
	}
}

// jsonAV converts a decoded JSON value (numbers as json.Number).
func jsonAV(v any) types.AttributeValue {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]types.AttributeValue, len(x))
		for k, e := range x {
			m[k] = jsonAV(e)
		}
		return &types.AttributeValueMemberM{Value: m}
	case []any:
		l := make([]types.AttributeValue, len(x))
		for i, e := range x {
			l[i] = jsonAV(e)
		}
		return &types.AttributeValueMemberL{Value: l}
	case string:
		return &types.AttributeValueMemberS{Value: x}
	case json.Number:
		return &types.AttributeValueMemberN{Value: x.String()}
	case bool:
		return &types.AttributeValueMemberBOOL{Value: x}
	default:
		return &types.AttributeValueMemberNULL{Value: true}
	}
}
