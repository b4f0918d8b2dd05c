package dynamoattr

import (
	"bytes"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"slices"

	"github.com/cutover/cutover/pipeline"
)

// From converts a DynamoDB attribute value.
func From(av ddbtypes.AttributeValue) pipeline.Attr {
	switch v := av.(type) {
	case *ddbtypes.AttributeValueMemberS:
		return pipeline.Attr{Kind: pipeline.AttrS, S: v.Value}
	case *ddbtypes.AttributeValueMemberN:
		return pipeline.Attr{Kind: pipeline.AttrN, N: v.Value}
	case *ddbtypes.AttributeValueMemberB:
		return pipeline.Attr{Kind: pipeline.AttrB, B: nonNil(v.Value)}
	case *ddbtypes.AttributeValueMemberBOOL:
		return pipeline.Attr{Kind: pipeline.AttrBOOL, BOOL: v.Value}
	case *ddbtypes.AttributeValueMemberL:
		l := make([]pipeline.Attr, len(v.Value))
		for i, x := range v.Value {
			l[i] = From(x)
		}
		return pipeline.Attr{Kind: pipeline.AttrL, L: l}
	case *ddbtypes.AttributeValueMemberM:
		return pipeline.Attr{Kind: pipeline.AttrM, M: FromItem(v.Value)}
	case *ddbtypes.AttributeValueMemberSS:
		return pipeline.Attr{Kind: pipeline.AttrSS, SS: sortedStrings(v.Value)}
	case *ddbtypes.AttributeValueMemberNS:
		return pipeline.Attr{Kind: pipeline.AttrNS, NS: sortedStrings(v.Value)}
	case *ddbtypes.AttributeValueMemberBS:
		return pipeline.Attr{Kind: pipeline.AttrBS, BS: sortedBytes(v.Value)}
	}
	return pipeline.Attr{Kind: pipeline.AttrNULL}
}

// FromItem converts an item.
func FromItem(m map[string]ddbtypes.AttributeValue) map[string]pipeline.Attr {
	out := make(map[string]pipeline.Attr, len(m))
	for k, v := range m {
		out[k] = From(v)
	}
	return out
}

// FromStream converts a stream record's attribute value.
func FromStream(av streamtypes.AttributeValue) pipeline.Attr {
	switch v := av.(type) {
	case *streamtypes.AttributeValueMemberS:
		return pipeline.Attr{Kind: pipeline.AttrS, S: v.Value}
	case *streamtypes.AttributeValueMemberN:
		return pipeline.Attr{Kind: pipeline.AttrN, N: v.Value}
	case *streamtypes.AttributeValueMemberB:
		return pipeline.Attr{Kind: pipeline.AttrB, B: nonNil(v.Value)}
	case *streamtypes.AttributeValueMemberBOOL:
		return pipeline.Attr{Kind: pipeline.AttrBOOL, BOOL: v.Value}
	case *streamtypes.AttributeValueMemberL:
		l := make([]pipeline.Attr, len(v.Value))
		for i, x := range v.Value {
			l[i] = FromStream(x)
		}
		return pipeline.Attr{Kind: pipeline.AttrL, L: l}
	case *streamtypes.AttributeValueMemberM:
		return pipeline.Attr{Kind: pipeline.AttrM, M: FromStreamItem(v.Value)}
	case *streamtypes.AttributeValueMemberSS:
		return pipeline.Attr{Kind: pipeline.AttrSS, SS: sortedStrings(v.Value)}
	case *streamtypes.AttributeValueMemberNS:
		return pipeline.Attr{Kind: pipeline.AttrNS, NS: sortedStrings(v.Value)}
	case *streamtypes.AttributeValueMemberBS:
		return pipeline.Attr{Kind: pipeline.AttrBS, BS: sortedBytes(v.Value)}
	}
	return pipeline.Attr{Kind: pipeline.AttrNULL}
}

// FromStreamImage converts a stream record's new image; ok is false when
// there is none, or a value in it names no attribute type (DynamoDB Local
// writes an empty map as {}): it cannot be trusted to be the item.
func FromStreamImage(m map[string]streamtypes.AttributeValue) (map[string]pipeline.Attr, bool) {
	if m == nil || !streamValuesKnown(m) {
		return nil, false
	}
	return FromStreamItem(m), true
}

func streamValuesKnown(m map[string]streamtypes.AttributeValue) bool {
	for _, v := range m {
		if !streamValueKnown(v) {
			return false
		}
	}
	return true
}

func streamValueKnown(av streamtypes.AttributeValue) bool {
	switch v := av.(type) {
	case *streamtypes.AttributeValueMemberS, *streamtypes.AttributeValueMemberN, *streamtypes.AttributeValueMemberB,
		*streamtypes.AttributeValueMemberBOOL, *streamtypes.AttributeValueMemberNULL, *streamtypes.AttributeValueMemberSS,
		*streamtypes.AttributeValueMemberNS, *streamtypes.AttributeValueMemberBS:
		return true
	case *streamtypes.AttributeValueMemberL:
		for _, x := range v.Value {
			if !streamValueKnown(x) {
				return false
			}
		}
		return true
	case *streamtypes.AttributeValueMemberM:
		return streamValuesKnown(v.Value)
	}
	return false
}

// FromStreamItem converts a stream record's image or keys.
func FromStreamItem(m map[string]streamtypes.AttributeValue) map[string]pipeline.Attr {
	out := make(map[string]pipeline.Attr, len(m))
	for k, v := range m {
		out[k] = FromStream(v)
	}
	return out
}

// To converts a carried attribute back to the SDK's type.
func To(a *pipeline.Attr) ddbtypes.AttributeValue {
	switch a.Kind {
	case pipeline.AttrS:
		return &ddbtypes.AttributeValueMemberS{Value: a.S}
	case pipeline.AttrN:
		return &ddbtypes.AttributeValueMemberN{Value: a.N}
	case pipeline.AttrB:
		return &ddbtypes.AttributeValueMemberB{Value: a.B}
	case pipeline.AttrBOOL:
		return &ddbtypes.AttributeValueMemberBOOL{Value: a.BOOL}
	case pipeline.AttrL:
		l := make([]ddbtypes.AttributeValue, len(a.L))
		for i := range a.L {
			l[i] = To(&a.L[i])
		}
		return &ddbtypes.AttributeValueMemberL{Value: l}
	case pipeline.AttrM:
		return &ddbtypes.AttributeValueMemberM{Value: ToItem(a.M)}
	case pipeline.AttrSS:
		return &ddbtypes.AttributeValueMemberSS{Value: a.SS}
	case pipeline.AttrNS:
		return &ddbtypes.AttributeValueMemberNS{Value: a.NS}
	case pipeline.AttrBS:
		return &ddbtypes.AttributeValueMemberBS{Value: a.BS}
	default:
		return &ddbtypes.AttributeValueMemberNULL{Value: true}
	}
}

// ToItem converts a carried item back to the SDK's type.
func ToItem(m map[string]pipeline.Attr) map[string]ddbtypes.AttributeValue {
	out := make(map[string]ddbtypes.AttributeValue, len(m))
	for k, v := range m {
		out[k] = To(&v)
	}
	return out
}

// Key converts a primary key.
func Key(key []pipeline.KeyAttr) map[string]ddbtypes.AttributeValue {
	out := make(map[string]ddbtypes.AttributeValue, len(key))
	for _, k := range key {
		out[k.Name] = To(&k.Value)
	}
	return out
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// sortedStrings and sortedBytes put a set's members in one order. A set
// has none, and DynamoDB answers the same set in different orders (a Scan
// and a stream image of one item, say): rendered as JSON, the same item
// would then read as two different values.
func sortedStrings(set []string) []string {
	out := slices.Clone(set)
	slices.Sort(out)
	return out
}

func sortedBytes(set [][]byte) [][]byte {
	out := slices.Clone(set)
	slices.SortFunc(out, bytes.Compare)
	return out
}
