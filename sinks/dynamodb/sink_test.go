package dynamodb

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/cutover/cutover/pipeline/reconcile"
	"github.com/cutover/cutover/sinks/sinktest"
	"github.com/cutover/cutover/test/stack"
)

type target struct{ *Sink }

func (t target) Read(ctx context.Context, key []byte) (reconcile.Found, error) {
	found, err := t.Lookup(ctx, [][]byte{key})
	return found[string(key)], err
}

func TestContract(t *testing.T) {
	ep := stack.DynamoDBEndpoint(t)
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ep) })
	sinktest.Run(t, sinktest.Caps{Chunks: false, TTLPrecision: time.Second}, func(t *testing.T) sinktest.Target {
		s, err := New(db, Options{Table: stack.Unique("contract"), KeyType: "B", CreateTable: true, Endpoint: ep})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		return target{s}
	})
}
