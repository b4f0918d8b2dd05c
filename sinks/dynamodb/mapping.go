package dynamodb

import (
	"fmt"
	"math"
	"strconv"
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

// Item builds the item an event writes: the value for an upsert, a
// tombstone for a delete. now is used for the tombstone's expiry.
func (m *Mapping) Item(e *pipeline.Event, now time.Time) (map[string]types.AttributeValue, error) {
	item, err := m.KeyAttrs(e.Key)
	if err != nil {
		return nil, err
	}
	item[m.VersionAttribute] = &types.AttributeValueMemberB{Value: e.Version}
	if e.Op == pipeline.OpDelete {
		item[m.DeletedAttribute] = &types.AttributeValueMemberBOOL{Value: true}
		item[m.TTLAttribute] = epochSeconds(now.Add(m.TombstoneRetention))
		return item, nil
	}
	switch {
	case m.Template != nil:
		if err := m.ruleItem(e, item); err != nil {
			return nil, fmt.Errorf("%w: key %q: %w", pipeline.ErrUnmappable, e.Key, err)
		}
	case m.Items && e.Value.Type == pipeline.TypeItem:
		// The source's item, as it was; its key attributes are the ones
		// the event key named.
		for name, a := range e.Value.Item {
			if _, isKey := item[name]; !isKey {
				item[name] = dynamoattr.To(&a)
			}
		}
		if _, has := item[m.TTLAttribute]; has || e.ExpireAt.IsZero() {
			return item, nil
		}
	case m.Items || e.Value.Type == pipeline.TypeItem:
		return nil, fmt.Errorf("%w: key %q: a %s value cannot be written to a table mapped for %s", pipeline.ErrUnmappable, e.Key,
			e.Value.Type, map[bool]string{true: "DynamoDB items (the source is DynamoDB)", false: "Redis keys (the source is Redis)"}[m.Items])
	default:
		v, err := redisValue(&e.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: key %q: %w", pipeline.ErrUnmappable, e.Key, err)
		}
		item[m.TypeAttribute] = &types.AttributeValueMemberS{Value: e.Value.Type.String()}
		item[m.ValueAttribute] = v
	}
	if !e.ExpireAt.IsZero() {
		item[m.TTLAttribute] = epochSeconds(e.ExpireAt)
	}
	return item, nil
}

// epochSeconds is the TTL number DynamoDB expects: whole seconds, rounded
// up so the item never expires before the source key did.
func epochSeconds(t time.Time) types.AttributeValue {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(s, 10)}
}

func redisValue(v *pipeline.Value) (types.AttributeValue, error) {
	switch v.Type {
	case pipeline.TypeString:
		return &types.AttributeValueMemberB{Value: v.String}, nil
	case pipeline.TypeHash:
		if mapKeysOK(v.Hash) {
			m := make(map[string]types.AttributeValue, len(v.Hash))
			for _, f := range v.Hash {
				m[string(f.Name)] = &types.AttributeValueMemberB{Value: f.Value}
			}
			return &types.AttributeValueMemberM{Value: m}, nil
		}
		pairs := make([]types.AttributeValue, len(v.Hash))
		for i, f := range v.Hash {
			pairs[i] = &types.AttributeValueMemberL{Value: []types.AttributeValue{
				&types.AttributeValueMemberB{Value: f.Name}, &types.AttributeValueMemberB{Value: f.Value}}}
		}
		return &types.AttributeValueMemberL{Value: pairs}, nil
	case pipeline.TypeList:
		return binaryList(v.List), nil
	case pipeline.TypeSet:
		for _, m := range v.Set {
			if len(m) == 0 {
				return binaryList(v.Set), nil
			}
		}
		return &types.AttributeValueMemberBS{Value: v.Set}, nil
	case pipeline.TypeZSet:
		l := make([]types.AttributeValue, len(v.ZSet))
		for i, m := range v.ZSet {
			l[i] = &types.AttributeValueMemberL{Value: []types.AttributeValue{
				&types.AttributeValueMemberB{Value: m.Member}, scoreAV(m.Score)}}
		}
		return &types.AttributeValueMemberL{Value: l}, nil
	case pipeline.TypeStream:
		return nil, fmt.Errorf("a Redis stream (entries with their IDs, consumer groups) has no DynamoDB item form: " +
			"copy it to a Redis target, or leave it out (--exclude, or --type without stream)")
	default:
		return nil, fmt.Errorf("type %s has no DynamoDB mapping", v.Type)
	}
}

func mapKeysOK(fields []pipeline.Field) bool {
	for _, f := range fields {
		if len(f.Name) == 0 || !utf8.Valid(f.Name) {
			return false
		}
	}
	return true
}

func binaryList(elems [][]byte) types.AttributeValue {
	l := make([]types.AttributeValue, len(elems))
	for i, e := range elems {
		l[i] = &types.AttributeValueMemberB{Value: e}
	}
	return &types.AttributeValueMemberL{Value: l}
}

// scoreAV stores a score as N when DynamoDB's number type holds it exactly
// (magnitude 1e-130 to 1e126, not negative zero, not infinite) and as S
// otherwise. Go's shortest formatting gives at most 17 significant digits,
// well within N's 38, and parses back to the same float64.
func scoreAV(f float64) types.AttributeValue {
	s := string(pipeline.AppendScore(nil, f))
	a := math.Abs(f)
	if f == 0 && !math.Signbit(f) || a >= 1e-130 && a < 1e126 {
		return &types.AttributeValueMemberN{Value: s}
	}
	return &types.AttributeValueMemberS{Value: s}
}

// maxEpochSeconds bounds an expiry read back (year 33658): past it,
// time.Unix's int64 would overflow.
const maxEpochSeconds = 1e12

// ItemState is what an item written by Mapping says about its key.
type ItemState struct {
	Deleted  bool // a tombstone
	Value    pipeline.Value
	ExpireAt time.Time // whole seconds, as stored
	Version  pipeline.Version
}

// ValueFromItem reads an item written by Item back into a Redis value (in
// item mode: the item without cutover's own attributes). It is the
// inverse of Item for every Redis type, and what reconcile and the tests
// compare with.
func (m *Mapping) ValueFromItem(item map[string]types.AttributeValue) (ItemState, error) {
	var st ItemState
	if v, ok := item[m.VersionAttribute].(*types.AttributeValueMemberB); ok {
		st.Version = v.Value
	}
	if d, ok := item[m.DeletedAttribute].(*types.AttributeValueMemberBOOL); ok && d.Value {
		st.Deleted = true
		return st, nil
	}
	if n, ok := item[m.TTLAttribute].(*types.AttributeValueMemberN); ok {
		secs, err := strconv.ParseFloat(n.Value, 64)
		switch {
		case err == nil && secs > 0 && secs < maxEpochSeconds && (m.Items || secs == math.Trunc(secs)):
			st.ExpireAt = time.Unix(int64(secs), 0)
		case !m.Items && m.Template == nil:
			return st, fmt.Errorf("%s %q is not whole epoch seconds", m.TTLAttribute, n.Value)
		}
	}
	if m.Items || m.Template != nil {
		st.Value = pipeline.Value{Type: pipeline.TypeItem, Item: make(map[string]pipeline.Attr, len(item))}
		for name, av := range item {
			if name != m.VersionAttribute && name != m.DeletedAttribute && (m.Items || name != m.TTLAttribute) {
				st.Value.Item[name] = dynamoattr.From(av)
			}
		}
		return st, nil
	}
	ts, ok := item[m.TypeAttribute].(*types.AttributeValueMemberS)
	if !ok {
		return st, fmt.Errorf("item has no %s attribute: not written by cutover's Redis mapping", m.TypeAttribute)
	}
	t, err := pipeline.ParseType(ts.Value)
	if err != nil {
		return st, err
	}
	st.Value.Type = t
	raw := item[m.ValueAttribute]
	bad := func() (ItemState, error) {
		return st, fmt.Errorf("%s value is stored as %T, not as cutover's mapping writes it", t, raw)
	}
	switch t {
	case pipeline.TypeString:
		b, ok := raw.(*types.AttributeValueMemberB)
		if !ok {
			return bad()
		}
		st.Value.String = nonNil(b.Value)
	case pipeline.TypeHash:
		switch h := raw.(type) {
		case *types.AttributeValueMemberM:
			for name, av := range h.Value {
				b, ok := av.(*types.AttributeValueMemberB)
				if !ok {
					return bad()
				}
				st.Value.Hash = append(st.Value.Hash, pipeline.Field{Name: []byte(name), Value: nonNil(b.Value)})
			}
		case *types.AttributeValueMemberL:
			for _, p := range h.Value {
				pair, ok := asPair(p)
				if !ok {
					return bad()
				}
				n, ok1 := pair[0].(*types.AttributeValueMemberB)
				v, ok2 := pair[1].(*types.AttributeValueMemberB)
				if !ok1 || !ok2 {
					return bad()
				}
				st.Value.Hash = append(st.Value.Hash, pipeline.Field{Name: nonNil(n.Value), Value: nonNil(v.Value)})
			}
		default:
			return bad()
		}
	case pipeline.TypeList, pipeline.TypeSet:
		var elems [][]byte
		switch l := raw.(type) {
		case *types.AttributeValueMemberL:
			for _, av := range l.Value {
				b, ok := av.(*types.AttributeValueMemberB)
				if !ok {
					return bad()
				}
				elems = append(elems, nonNil(b.Value))
			}
		case *types.AttributeValueMemberBS:
			if t != pipeline.TypeSet {
				return bad()
			}
			elems = l.Value
		default:
			return bad()
		}
		if t == pipeline.TypeList {
			st.Value.List = elems
		} else {
			st.Value.Set = elems
		}
	case pipeline.TypeZSet:
		l, ok := raw.(*types.AttributeValueMemberL)
		if !ok {
			return bad()
		}
		for _, p := range l.Value {
			pair, ok := asPair(p)
			if !ok {
				return bad()
			}
			member, ok := pair[0].(*types.AttributeValueMemberB)
			if !ok {
				return bad()
			}
			var s string
			switch sc := pair[1].(type) {
			case *types.AttributeValueMemberN:
				s = sc.Value
			case *types.AttributeValueMemberS:
				s = sc.Value
			default:
				return bad()
			}
			score, err := pipeline.ParseScore(s)
			if err != nil {
				return st, err
			}
			st.Value.ZSet = append(st.Value.ZSet, pipeline.ScoredMember{Member: nonNil(member.Value), Score: score})
		}
	default:
		return bad()
	}
	return st, nil
}

// EventFromItem is the state of its Redis key that an item of the generic
// mapping holds: an upsert of the value and expiry, or a delete for a
// tombstone. Only Key, Op, Value and ExpireAt are set; the reverse
// pipeline of a roll-back reads the table so (sources/dynamodb.Decoder).
func (m *Mapping) EventFromItem(item map[string]types.AttributeValue) (pipeline.Event, error) {
	if m.Items || m.Template != nil {
		return pipeline.Event{}, fmt.Errorf("only the generic mapping stores Redis keys in items")
	}
	key, err := m.ItemKey(item)
	if err != nil {
		return pipeline.Event{}, err
	}
	st, err := m.ValueFromItem(item)
	switch {
	case err != nil:
		return pipeline.Event{}, err
	case st.Deleted:
		return pipeline.Event{Key: key, Op: pipeline.OpDelete}, nil
	}
	return pipeline.Event{Key: key, Op: pipeline.OpUpsert, Value: st.Value, ExpireAt: st.ExpireAt}, nil
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

// asPair reads a two-element list: a hash field pair or a zset member.
func asPair(av types.AttributeValue) ([]types.AttributeValue, bool) {
	l, ok := av.(*types.AttributeValueMemberL)
	if !ok || len(l.Value) != 2 {
		return nil, false
	}
	return l.Value, true
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Expect is the value Lookup returns for an item written from e: the event
// mapped to an item, without cutover's own attributes. Reconcile compares
// the target with it.
func (m *Mapping) Expect(e *pipeline.Event) (pipeline.Value, error) {
	if m.Template == nil {
		return e.Value, nil
	}
	item, err := m.Item(e, time.Time{})
	if err != nil {
		return pipeline.Value{}, err
	}
	delete(item, m.VersionAttribute)
	delete(item, m.TTLAttribute)
	return pipeline.Value{Type: pipeline.TypeItem, Item: dynamoattr.FromItem(item)}, nil
}
