package dynamodb

import (
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/pipeline"
)

// MaxItemBytes is the largest item DynamoDB stores (400 KB), as ItemSize
// counts it.
const MaxItemBytes = 400 * 1024

// ItemSize is an item's size as DynamoDB counts it against the 400 KB
// limit and for write units: each attribute's name plus its value, where
// a string counts its UTF-8 bytes, a binary its bytes, a number about one
// byte per two significant digits plus one, a boolean or null one byte,
// and a list or map 3 bytes plus one byte and the size of each element
// (a map's element names included). A set counts its elements.
//
// `cutover plan` uses it to tell which keys will not fit before a run
// (the sink itself leaves that to DynamoDB's ValidationException).
func ItemSize(item map[string]types.AttributeValue) int64 {
	var n int64
	for name, av := range item {
		n += int64(len(name)) + valueSize(av)
	}
	return n
}

func valueSize(av types.AttributeValue) int64 {
	switch v := av.(type) {
	case *types.AttributeValueMemberS:
		return int64(len(v.Value))
	case *types.AttributeValueMemberB:
		return int64(len(v.Value))
	case *types.AttributeValueMemberN:
		return numberSize(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		var n int64
		for _, s := range v.Value {
			n += int64(len(s))
		}
		return n
	case *types.AttributeValueMemberBS:
		var n int64
		for _, b := range v.Value {
			n += int64(len(b))
		}
		return n
	case *types.AttributeValueMemberNS:
		var n int64
		for _, s := range v.Value {
			n += numberSize(s)
		}
		return n
	case *types.AttributeValueMemberL:
		n := int64(3)
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := int64(3)
		for name, e := range v.Value {
			n += 1 + int64(len(name)) + valueSize(e)
		}
		return n
	}
	return 0
}

// numberSize is a number's size: its significant digits (leading and
// trailing zeros trimmed), one byte per two, plus one.
func numberSize(s string) int64 {
	s = strings.TrimLeft(s, "+-")
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	digits := strings.Trim(strings.Replace(s, ".", "", 1), "0")
	if digits == "" {
		return 1
	}
	return int64(len(digits)+1)/2 + 1
}

// ItemBytes is the ItemSize of the item the target would write for e (see
// Item, whose errors it returns): what `cutover plan` measures.
func (r *Router) ItemBytes(e *pipeline.Event, now time.Time) (int64, error) {
	item, err := r.Item(e, now)
	if err != nil {
		return 0, err
	}
	return ItemSize(item), nil
}
