package dynamodb

import (
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/pipeline"
)

// toAV converts a carried attribute to the SDK's type, losslessly.
func toAV(a *pipeline.Attr) types.AttributeValue {
	switch a.Kind {
	case pipeline.AttrS:
		return &types.AttributeValueMemberS{Value: a.S}
	case pipeline.AttrN:
		return &types.AttributeValueMemberN{Value: a.N}
	case pipeline.AttrB:
		return &types.AttributeValueMemberB{Value: a.B}
	case pipeline.AttrBOOL:
		return &types.AttributeValueMemberBOOL{Value: a.BOOL}
	case pipeline.AttrNULL:
		return &types.AttributeValueMemberNULL{Value: true}
	case pipeline.AttrL:
		l := make([]types.AttributeValue, len(a.L))
		for i := range a.L {
			l[i] = toAV(&a.L[i])
		}
		return &types.AttributeValueMemberL{Value: l}
	case pipeline.AttrM:
		m := make(map[string]types.AttributeValue, len(a.M))
		for k, v := range a.M {
			m[k] = toAV(&v)
		}
		return &types.AttributeValueMemberM{Value: m}
	case pipeline.AttrSS:
		return &types.AttributeValueMemberSS{Value: a.SS}
	case pipeline.AttrNS:
		return &types.AttributeValueMemberNS{Value: a.NS}
	case pipeline.AttrBS:
		return &types.AttributeValueMemberBS{Value: a.BS}
	}
	return &types.AttributeValueMemberNULL{Value: true}
}
