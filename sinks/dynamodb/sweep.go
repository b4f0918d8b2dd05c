package dynamodb

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/pipeline"
)

// sweepSegments is how many Scan segments a sweep reads in parallel.
const sweepSegments = 4

// sweep applies a truncate event: every live item that the event's scope
// covers and whose version is older than the event's gets a tombstone with
// the event's version. The write is the same conditional PutItem as any
// delete, so an item rewritten with a newer version meanwhile is left
// alone.
func (s *Sink) sweep(ctx context.Context, e *pipeline.Event) (int64, error) {
	var swept atomic.Int64
	now := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for seg := range sweepSegments {
		g.Go(func() error {
			names := map[string]string{"#d": s.opts.DeletedAttribute, "#v": s.opts.VersionAttribute}
			p := dynamodb.NewScanPaginator(s.db, &dynamodb.ScanInput{
				TableName:                aws.String(s.opts.Table),
				Segment:                  aws.Int32(int32(seg)),
				TotalSegments:            aws.Int32(sweepSegments),
				ConsistentRead:           aws.Bool(true),
				ProjectionExpression:     s.keyProjection(names),
				FilterExpression:         aws.String("attribute_not_exists(#d) AND (attribute_not_exists(#v) OR #v < :v)"),
				ExpressionAttributeNames: names,
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":v": &types.AttributeValueMemberB{Value: e.Version},
				},
			})
			for p.HasMorePages() {
				page, err := p.NextPage(gctx)
				if err != nil {
					return fmt.Errorf("sweep: scan %s segment %d: %w", s.opts.Table, seg, explain(s.opts.Endpoint, err))
				}
				for _, item := range page.Items {
					key, err := s.keyOf(item)
					if err != nil {
						// An item the pipeline did not write (its key cannot
						// be an event key) is not the sweep's to remove; one
						// such item must not stop every sweep, and the worker.
						s.log.Warn("sweep: an item's key cannot be read as an event key; the item is left alone",
							"table", s.opts.Table, "err", err)
						continue
					}
					if !e.Scope.Covers(key) {
						continue
					}
					del := pipeline.Event{Key: key, Op: pipeline.OpDelete, Origin: e.Origin, Version: e.Version}
					res, err := s.write(gctx, &del, now)
					if err != nil {
						return err
					}
					if res.Outcome == pipeline.Applied {
						swept.Add(1)
					}
				}
			}
			return nil
		})
	}
	err := g.Wait()
	s.swept.Add(swept.Load())
	return swept.Load(), err
}
