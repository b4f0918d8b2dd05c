package dynamodb

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/cutover/cutover/internal/retry"
	"github.com/cutover/cutover/pipeline/reconcile"
)

var _ reconcile.Target = (*Sink)(nil)

// Lookup implements reconcile.Target: it reads the items of keys with
// strongly consistent BatchGetItem calls of up to 100 keys and returns what
// the table holds for each, by key. A tombstone reads as absent; an item
// that is not in the mapping's shape has Found.Err set. Keys that cannot be
// mapped to a DynamoDB key are absent from the result. The SDK's retryer
// retries throttled calls; unprocessed keys are asked for again with
// backoff.
func (s *Sink) Lookup(ctx context.Context, keys [][]byte) (map[string]reconcile.Found, error) {
	out := make(map[string]reconcile.Found, len(keys))
	for start := 0; start < len(keys); start += 100 {
		chunk := keys[start:min(start+100, len(keys))]
		req := make([]map[string]types.AttributeValue, 0, len(chunk))
		for _, k := range chunk {
			if _, dup := out[string(k)]; dup {
				continue // BatchGetItem refuses a list with a key twice
			}
			av, err := s.m.KeyAttrs(k)
			if err != nil {
				continue
			}
			req = append(req, av)
			out[string(k)] = reconcile.Found{}
		}
		if err := s.batchGet(ctx, req, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Sink) batchGet(ctx context.Context, req []map[string]types.AttributeValue, out map[string]reconcile.Found) error {
	bo := retry.New(2*time.Minute, retry.Initial(50*time.Millisecond), retry.Max(time.Minute))
	for len(req) > 0 {
		resp, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
			RequestItems: map[string]types.KeysAndAttributes{s.opts.Table: {Keys: req, ConsistentRead: aws.Bool(true)}},
		})
		if err != nil {
			return fmt.Errorf("read items from %s: %w", s.opts.Table, explain(s.opts.Endpoint, err))
		}
		for _, item := range resp.Responses[s.opts.Table] {
			key, err := s.keyOf(item)
			if err != nil {
				return err
			}
			st, err := s.m.ValueFromItem(item)
			out[string(key)] = reconcile.Found{Exists: err != nil || !st.Deleted, Value: st.Value, ExpireAt: st.ExpireAt, Version: st.Version, Err: err}
		}
		req = resp.UnprocessedKeys[s.opts.Table].Keys
		if len(req) > 0 {
			wait := bo.NextBackOff()
			if wait == retry.Stop {
				return fmt.Errorf("read items from %s: %d keys still unprocessed after retrying for 2m", s.opts.Table, len(req))
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
	}
	return nil
}

func (s *Sink) keyOf(item map[string]types.AttributeValue) ([]byte, error) {
	k, err := s.m.ItemKey(item)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", s.opts.Table, err)
	}
	return k, nil
}

// keyProjection reads just an item's key attributes.
func (s *Sink) keyProjection(names map[string]string) *string {
	names["#k"] = s.opts.KeyAttribute
	if s.opts.SortAttribute == "" {
		return aws.String("#k")
	}
	names["#s"] = s.opts.SortAttribute
	return aws.String("#k, #s")
}

// ListKeys implements reconcile.KeyLister: every live item's key (not
// tombstones), a Scan page at a time.
func (s *Sink) ListKeys(ctx context.Context, fn func(keys [][]byte) error) error {
	names := map[string]string{"#d": s.opts.DeletedAttribute}
	p := dynamodb.NewScanPaginator(s.db, &dynamodb.ScanInput{
		TableName:                aws.String(s.opts.Table),
		ProjectionExpression:     s.keyProjection(names),
		FilterExpression:         aws.String("attribute_not_exists(#d)"),
		ExpressionAttributeNames: names,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("scan %s: %w", s.opts.Table, explain(s.opts.Endpoint, err))
		}
		keys := make([][]byte, 0, len(page.Items))
		for _, item := range page.Items {
			k, err := s.keyOf(item)
			if err != nil {
				return err
			}
			keys = append(keys, k)
		}
		if len(keys) > 0 {
			if err := fn(keys); err != nil {
				return err
			}
		}
	}
	return nil
}
