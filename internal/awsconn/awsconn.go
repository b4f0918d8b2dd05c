package awsconn

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
)

// Config loads the default AWS credential chain (environment, shared
// config and profile, web identity, container and instance roles) for a
// region; with roleARN, those credentials assume that role (a table in
// another account).
func Config(ctx context.Context, region, roleARN string, log *slog.Logger) (aws.Config, error) {
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

// DynamoDB builds a DynamoDB client for a region and, if set, an
// endpoint (DynamoDB Local).
func DynamoDB(ctx context.Context, region, endpoint, roleARN string, log *slog.Logger) (*dynamodb.Client, error) {
	awsCfg, err := Config(ctx, region, roleARN, log)
	if err != nil {
		return nil, err
	}
	return dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}

// Streams builds a DynamoDB Streams client, like DynamoDB.
func Streams(ctx context.Context, region, endpoint, roleARN string, log *slog.Logger) (*dynamodbstreams.Client, error) {
	awsCfg, err := Config(ctx, region, roleARN, log)
	if err != nil {
		return nil, err
	}
	return dynamodbstreams.NewFromConfig(awsCfg, func(o *dynamodbstreams.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
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
