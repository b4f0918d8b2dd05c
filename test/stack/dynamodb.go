package stack

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"
	"golang.org/x/sync/semaphore"
)

// DynamoDB returns a client of the local stack's DynamoDB Local.
func DynamoDB(t testing.TB) *dynamodb.Client {
	t.Helper()
	ep := DynamoDBEndpoint(t)
	// DynamoDB Local's error replies lack the checksum header the SDK
	// warns about; the errors themselves reach the tests.
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")),
		config.WithLogger(logging.Nop{}))
	if err != nil {
		t.Fatal(err)
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ep) })
}

// DropTables deletes the tables when t ends, whether or not they were
// created: DynamoDB Local slows down as tables (and their streams) pile
// up in one shared database over a test run.
func DropTables(t testing.TB, db *dynamodb.Client, tables ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, name := range tables {
			_, _ = db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		}
	})
}

// dynamoLoad keeps the tests that load DynamoDB Local hardest from
// running all at once: DynamoDB Local writes through one SQLite database,
// so several heavy tests together slow each other past their deadlines.
var dynamoLoad = semaphore.NewWeighted(2)

// LoadDynamoDB waits until DynamoDB Local has room for a heavy test of
// the given weight (1 shares it with one other heavy test, 2 runs alone)
// and holds the room until the test ends. Call it after t.Parallel and
// before the test's own deadline starts.
func LoadDynamoDB(t testing.TB, weight int64) {
	t.Helper()
	if err := dynamoLoad.Acquire(context.Background(), weight); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dynamoLoad.Release(weight) })
}
