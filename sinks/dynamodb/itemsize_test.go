package dynamodb

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestItemSize(t *testing.T) {
	for _, c := range []struct {
		name string
		item map[string]types.AttributeValue
		want int64
	}{
		{"string", map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "user:1"}}, 2 + 6},
		{"binary", map[string]types.AttributeValue{"value": &types.AttributeValueMemberB{Value: make([]byte, 100)}}, 5 + 100},
		{"number", map[string]types.AttributeValue{"n": &types.AttributeValueMemberN{Value: "12345"}}, 1 + 3 + 1},
		{"number trims zeros", map[string]types.AttributeValue{"n": &types.AttributeValueMemberN{Value: "-0001200.00"}}, 1 + 1 + 1},
		{"zero", map[string]types.AttributeValue{"n": &types.AttributeValueMemberN{Value: "0"}}, 1 + 1},
		{"bool", map[string]types.AttributeValue{"d": &types.AttributeValueMemberBOOL{Value: true}}, 1 + 1},
		{"list", map[string]types.AttributeValue{"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberB{Value: []byte("ab")}, &types.AttributeValueMemberB{Value: []byte("c")}}}}, 1 + 3 + (1 + 2) + (1 + 1)},
		{"map", map[string]types.AttributeValue{"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"f": &types.AttributeValueMemberB{Value: []byte("xyz")}}}}, 1 + 3 + 1 + 1 + 3},
		{"binary set", map[string]types.AttributeValue{"s": &types.AttributeValueMemberBS{Value: [][]byte{[]byte("a"), []byte("bc")}}}, 1 + 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ItemSize(c.item); got != c.want {
				t.Errorf("ItemSize = %d, want %d", got, c.want)
			}
		})
	}
}
