package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"

	"github.com/cutover/cutover/internal/config"
	ddbsink "github.com/cutover/cutover/sinks/dynamodb"
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
)

// awsConfig loads the default AWS credential chain (environment, shared
// config and profile, web identity, container and instance roles) for a
// region; with roleARN, those credentials assume that role (a table in
// another account).
func awsConfig(ctx context.Context, region, roleARN string, log *slog.Logger) (aws.Config, error) {
	// A sink worker keeps hundreds of writes in flight: keep as many
	// connections open, instead of the SDK's default of ten idle per
	// host, which would open and close connections all the time.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 1024
	})
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region), awsconfig.WithLogger(sdkLogger(log)),
		awsconfig.WithHTTPClient(httpClient))
	if err != nil {
		return awsCfg, fmt.Errorf("load AWS configuration: %w (check AWS_PROFILE and ~/.aws/config)", err)
	}
	if roleARN != "" {
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), roleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "cutover" }))
	}
	return awsCfg, nil
}

// newDynamoDBClient builds a DynamoDB client for a region and, if set, an
// endpoint (DynamoDB Local).
func newDynamoDBClient(ctx context.Context, region, endpoint, roleARN string, log *slog.Logger) (*dynamodb.Client, error) {
	awsCfg, err := awsConfig(ctx, region, roleARN, log)
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// newStreamsClient builds a DynamoDB Streams client, like newDynamoDBClient.
func newStreamsClient(ctx context.Context, region, endpoint, roleARN string, log *slog.Logger) (*dynamodbstreams.Client, error) {
	awsCfg, err := awsConfig(ctx, region, roleARN, log)
	if err != nil {
		return nil, err
	}
	return dynamodbstreams.NewFromConfig(awsCfg, func(o *dynamodbstreams.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// newDynamoDBSink connects the sink and checks (or creates) its tables:
// one per rule, and the default table. items is the source table when the
// source is DynamoDB: the target then gets its key schema and TTL
// attribute.
func newDynamoDBSink(ctx context.Context, cfg *config.Config, items *ddbsrc.Table, log *slog.Logger) (*ddbsink.Router, error) {
	router, err := newDynamoDBRouter(ctx, cfg, items, log)
	if err != nil {
		return nil, err
	}
	prepCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := router.Prepare(prepCtx); err != nil {
		return nil, err
	}
	return router, nil
}

// newDynamoDBRouter builds the sink's tables without touching them
// (`cutover plan` checks them read-only, with Router.Check).
func newDynamoDBRouter(ctx context.Context, cfg *config.Config, items *ddbsrc.Table, log *slog.Logger) (*ddbsink.Router, error) {
	d := cfg.Sink.DynamoDB
	client, err := newDynamoDBClient(ctx, d.Region, d.Endpoint, d.RoleARN, log)
	if err != nil {
		return nil, err
	}
	var routes []ddbsink.Route
	for _, r := range d.Rules {
		opts := ddbOptions(d, log)
		opts.Table = r.Table
		if r.TTLAttribute != "" {
			opts.TTLAttribute = r.TTLAttribute
		}
		opts.Rule = &ddbsink.Rule{Match: r.Match, Key: r.Key, KeyTypes: r.KeyTypes, Fields: r.Fields, ValueAttribute: r.ValueAttribute}
		s, err := ddbsink.New(client, opts)
		if err != nil {
			return nil, err
		}
		routes = append(routes, ddbsink.Route{Match: r.Match, Sink: s})
	}
	var fallback *ddbsink.Sink
	if d.Table != "" {
		opts := ddbOptions(d, log)
		if items != nil {
			opts.Items = true
			opts.KeyAttribute, opts.KeyType = items.Partition, items.PartitionType
			opts.SortAttribute, opts.SortType = items.Sort, items.SortType
			if items.TTLAttribute != "" {
				opts.TTLAttribute = items.TTLAttribute
			}
		}
		if fallback, err = ddbsink.New(client, opts); err != nil {
			return nil, err
		}
	}
	return ddbsink.NewRouter(routes, fallback), nil
}

func ddbOptions(d config.DynamoDBSinkConfig, log *slog.Logger) ddbsink.Options {
	return ddbsink.Options{
		Table: d.Table, KeyAttribute: d.KeyAttribute, KeyType: d.KeyType, CreateTable: d.CreateTable,
		TypeAttribute: d.Attributes.Type, ValueAttribute: d.Attributes.Value, TTLAttribute: d.Attributes.TTL,
		VersionAttribute: d.Attributes.Version, DeletedAttribute: d.Attributes.Deleted,
		Concurrency: d.Concurrency, MaxWritesPerSecond: d.MaxWritesPerSecond,
		TombstoneRetention: d.TombstoneRetention, Endpoint: d.Endpoint, Logger: log,
	}
}

// sdkLogger sends the AWS SDK's own messages to cutover's log instead of
// letting them print to stderr in another format.
func sdkLogger(log *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		msg := fmt.Sprintf(format, v...)
		// DynamoDB Local sends error responses (4xx) without the
		// x-amz-crc32 header, and the SDK warns about each one while
		// discarding the body. The error itself reaches cutover and is
		// handled; the warning is noise.
		if c == logging.Debug || strings.Contains(msg, "response did not match expected checksum, 0,") {
			log.Debug(msg, "component", "aws-sdk")
			return
		}
		log.Warn(msg, "component", "aws-sdk")
	})
}
