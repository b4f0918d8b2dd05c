package dynamodb

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/cutover/cutover/pipeline"
)

// scanOneAPI is what Preflight calls of DynamoDB; *dynamodb.Client
// implements it.
type scanOneAPI interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Preflight checks, read-only, what a backfill and live capture need of
// the described table, for `cutover plan`: its key, a one-item Scan (the
// user may read it), and a stream whose view type carries new images.
// readable is false when the Scan failed: a sample would fail too. A
// stream that is off or of the wrong view fails its step only: a
// backfill works without it.
func Preflight(ctx context.Context, db scanOneAPI, t *Table) (checks []pipeline.Check, readable bool) {
	checks = append(checks, pipeline.Passed("source table", fmt.Sprintf("%s: key %s (%s) %s", t.Name, t.Partition, t.PartitionType, t.Sort)))
	if _, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: &t.Name, Limit: aws.Int32(1)}); err != nil {
		return append(checks, pipeline.Failed("source read", fmt.Errorf("scan table %s: %w (grant dynamodb:Scan on it)", t.Name, err))), false
	}
	if err := t.CheckStream(); err != nil {
		checks = append(checks, pipeline.Failed("source stream", fmt.Errorf("%w (backfill works without it; replicate and the changes during a backfill need it)", err)))
	} else {
		checks = append(checks, pipeline.Passed("source stream", "enabled, view type "+t.StreamView))
	}
	return checks, true
}
