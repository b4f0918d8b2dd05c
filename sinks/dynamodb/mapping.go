package dynamodb

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/dynamoattr"
)

// Mapping turns events into DynamoDB items and back. The generic mapping
// stores one Redis key per item:
//
//	attribute          type  holds
//	<key>   (pk)       S|B   the Redis key (S needs valid UTF-8; B takes any bytes)
//	cutover_type       S     string | hash | list | set | zset
//	value              …     the value, by type (below)
//	expire_at          N     expiry, epoch seconds rounded up; absent without TTL
//	cutover_version    B     the event's version (conditional writes compare it)
//	cutover_deleted    BOOL  true on a tombstone (the key was deleted)
//
//	Redis type  value attribute
//	string      B   the bytes
//	hash        M   field → B;  L of [B field, B value] pairs when a field
//	                name is empty or not UTF-8 (DynamoDB map keys must be)
//	list        L   of B, in order
//	set         BS; L of B when a member is empty (sets may not hold one)
//	zset        L   of [B member, N score], in score order; the score is S
//	                ("inf", "-inf", "-0", "1e300") when N cannot hold it
//
// Every branch is lossless: ValueFromItem rebuilds the exact Redis value.
// Attribute names are configurable; see Options.
//
// With Items set, the events come from a DynamoDB source instead: an
// event's key is the item's primary key (pipeline.EncodeItemKey) and its
// value the item itself, which is written as it is, plus the version
// attribute (and the TTL attribute when the item has an expiry but not
// that attribute). A delete writes a tombstone holding just the key.
//
// With Template set (a Rule), Redis keys become natural items instead:
// the key template gives the key attributes, a hash's fields become
// attributes (typed by Fields), a string's value the ValueAttribute.
type Mapping struct {
	KeyAttribute string
	KeyType      types.ScalarAttributeType
	// SortAttribute and SortType are the table's sort key, in item mode.
	SortAttribute string
	SortType      types.ScalarAttributeType
	Items         bool
	// Template and Fields: the rule, in rule mode.
	Template         *pipeline.KeyTemplate
	Fields           map[string]string
	TypeAttribute    string
	ValueAttribute   string
	TTLAttribute     string
	VersionAttribute string
	DeletedAttribute string
	// TombstoneRetention is how long a delete's tombstone is kept (through
	// the table's TTL on TTLAttribute) to stop an older upsert from
	// bringing the key back.
	TombstoneRetention time.Duration
}

// Key returns the key attribute value of a source key.
func (m *Mapping) Key(key []byte) (types.AttributeValue, error) {
	if len(key) == 0 {
		// Redis has it (SET "" v); DynamoDB refuses an empty S or B.
		return nil, fmt.Errorf("%w: the empty key cannot be a DynamoDB item: key attribute %s would be empty, and DynamoDB key attributes cannot be empty (exclude the key, or copy it to a Redis target)",
			pipeline.ErrUnmappable, m.KeyAttribute)
	}
	if m.KeyType == types.ScalarAttributeTypeB {
		return &types.AttributeValueMemberB{Value: key}, nil
	}
	if !utf8.Valid(key) {
		return nil, fmt.Errorf("%w: key %q is not valid UTF-8 and the key attribute %s is of type S (use key type B for binary keys)",
			pipeline.ErrUnmappable, key, m.KeyAttribute)
	}
	return &types.AttributeValueMemberS{Value: string(key)}, nil
}

// KeyAttrs returns the primary key an event key addresses.
func (m *Mapping) KeyAttrs(key []byte) (map[string]types.AttributeValue, error) {
	if m.Template != nil {
		return m.ruleKey(key)
	}
	if !m.Items {
		av, err := m.Key(key)
		if err != nil {
			return nil, err
		}
		return map[string]types.AttributeValue{m.KeyAttribute: av}, nil
	}
	attrs, err := pipeline.DecodeItemKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (the topic does not carry DynamoDB items: is the source configured as in the pipeline that wrote it?)",
			pipeline.ErrUnmappable, err)
	}
	want := []string{m.KeyAttribute}
	if m.SortAttribute != "" {
		want = append(want, m.SortAttribute)
	}
	names := make([]string, len(attrs))
	for i, a := range attrs {
		names[i] = a.Name
	}
	if len(names) != len(want) || names[0] != want[0] || len(want) == 2 && names[1] != want[1] {
		return nil, fmt.Errorf("%w: item key %s has attributes %v, but the target table's key is %v: give the target table the source table's key schema",
			pipeline.ErrUnmappable, key, names, want)
	}
	for _, a := range attrs {
		// DynamoDB gives neither an empty S or B nor a number in another
		// form; written, the first is refused and the second is the item
		// of another key.
		if err := pipeline.CheckKeyAttr(a.Value); err != nil {
			return nil, fmt.Errorf("%w: item key %s: key attribute %s %w", pipeline.ErrUnmappable, key, a.Name, err)
		}
	}
	return dynamoattr.Key(attrs), nil
}

// ruleKey parses a Redis key with the rule's template. The template reads
// each key one way only (pipeline.KeyTemplate), and KeyAttrFromText takes
// only text that DynamoDB keeps as it is (no empty value, numbers in
// DynamoDB's own form), so distinct Redis keys are distinct items.
func (m *Mapping) ruleKey(key []byte) (map[string]types.AttributeValue, error) {
	values, ok := m.Template.Match(key)
	if !ok {
		return nil, fmt.Errorf("%w: key %q does not have the shape of the key template %s", pipeline.ErrUnmappable, key, m.Template)
	}
	out := make(map[string]types.AttributeValue, 2)
	for _, k := range []struct {
		name string
		typ  types.ScalarAttributeType
	}{{m.KeyAttribute, m.KeyType}, {m.SortAttribute, m.SortType}} {
		if k.name == "" {
			continue
		}
		a, err := pipeline.KeyAttrFromText(string(k.typ), values[k.name])
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: key attribute %s %w", pipeline.ErrUnmappable, key, k.name, err)
		}
		out[k.name] = dynamoattr.To(&a)
	}
	return out, nil
}

// ItemKey is the event key of an item read from the table: the inverse of
// KeyAttrs.
func (m *Mapping) ItemKey(item map[string]types.AttributeValue) ([]byte, error) {
	if m.Template != nil {
		values := make(map[string][]byte, 2)
		for _, name := range m.Template.Names() {
			av, ok := item[name]
			if !ok {
				return nil, fmt.Errorf("item has no key attribute %s", name)
			}
			t, err := pipeline.KeyText(dynamoattr.From(av))
			if err != nil {
				return nil, err
			}
			values[name] = t
		}
		// An item written by cutover renders back to its Redis key. One
		// written by someone else may hold the template's separator: no
		// Redis key maps to it, and rendering one would name another
		// item's key.
		k, err := m.Template.Render(values)
		if err != nil {
			return nil, fmt.Errorf("an item has no Redis key: %w", err)
		}
		return k, nil
	}
	if !m.Items {
		switch k := item[m.KeyAttribute].(type) {
		case *types.AttributeValueMemberS:
			return []byte(k.Value), nil
		case *types.AttributeValueMemberB:
			return k.Value, nil
		}
		return nil, fmt.Errorf("item has no %s key attribute of type S or B", m.KeyAttribute)
	}
	pk, ok := item[m.KeyAttribute]
	if !ok {
		return nil, fmt.Errorf("item has no partition key %s", m.KeyAttribute)
	}
	key := []pipeline.KeyAttr{{Name: m.KeyAttribute, Value: dynamoattr.From(pk)}}
	if m.SortAttribute != "" {
		sk, ok := item[m.SortAttribute]
		if !ok {
			return nil, fmt.Errorf("item has no sort key %s", m.SortAttribute)
		}
		key = append(key, pipeline.KeyAttr{Name: m.SortAttribute, Value: dynamoattr.From(sk)})
	}
	return pipeline.EncodeItemKey(key), nil
}

// GenericMapping is the generic mapping of opts (defaults applied to the
// attribute names), for reading a table that a Redis → DynamoDB pipeline
// wrote; see EventFromItem.
func GenericMapping(opts Options) *Mapping {
	opts.setDefaults()
	return &Mapping{
		KeyAttribute: opts.KeyAttribute, KeyType: types.ScalarAttributeType(opts.KeyType),
		TypeAttribute: opts.TypeAttribute, ValueAttribute: opts.ValueAttribute, TTLAttribute: opts.TTLAttribute,
		VersionAttribute: opts.VersionAttribute, DeletedAttribute: opts.DeletedAttribute,
	}
}
