package chaos

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDBReader reads the items cutover's generic mapping writes for
// Redis strings (key attribute "pk" of type S, the bytes in "value"). A
// tombstone, or an item past its expire_at, reads as absent.
type DynamoDBReader struct {
	Client *dynamodb.Client
	Table  string
}

// Read implements Reader.
func (r DynamoDBReader) Read(ctx context.Context, keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	now := time.Now().Unix()
	for start := 0; start < len(keys); start += 100 {
		var ks []map[string]types.AttributeValue
		for _, k := range keys[start:min(start+100, len(keys))] {
			ks = append(ks, map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: k}})
		}
		req := map[string]types.KeysAndAttributes{r.Table: {Keys: ks, ConsistentRead: new(true)}}
		for len(req) > 0 {
			resp, err := r.Client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("read %d items of %s: %w", len(ks), r.Table, err)
			}
			for _, item := range resp.Responses[r.Table] {
				pk, _ := item["pk"].(*types.AttributeValueMemberS)
				if pk == nil {
					continue
				}
				if d, ok := item["cutover_deleted"].(*types.AttributeValueMemberBOOL); ok && d.Value {
					continue
				}
				if exp, ok := item["expire_at"].(*types.AttributeValueMemberN); ok {
					if at, err := strconv.ParseInt(exp.Value, 10, 64); err == nil && at <= now {
						continue
					}
				}
				if v, ok := item["value"].(*types.AttributeValueMemberB); ok {
					out[pk.Value] = v.Value
				} else {
					out[pk.Value] = nil // not a string item: Compare reports a difference
				}
			}
			req = resp.UnprocessedKeys
		}
	}
	return out, nil
}
