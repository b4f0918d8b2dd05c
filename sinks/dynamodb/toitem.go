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
