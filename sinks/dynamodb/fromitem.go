package dynamodb

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/pipeline/dynamoattr"
)

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
