package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// class is what the sink does about an error from DynamoDB.
type class int

const (
	// classRetry: throttling, a 5xx, a dropped connection — retry with
	// backoff; it will go away.
	classRetry class = iota
	// classSkip: the condition failed — the table holds this version or a
	// newer one.
	classSkip
	// classReject: this item can never be written as it is (too large, an
	// invalid value) — dead-letter it.
	classReject
	// classFatal: nothing will be written until someone acts (bad
	// credentials, no permission, the table is gone) — stop the worker.
	classFatal
)

// throttleCodes are the error codes DynamoDB answers when a table or the
// account is over its capacity.
var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"TooManyRequestsException":               true,
}

func classify(err error) (class, bool) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return classSkip, false
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		switch {
		case throttleCodes[code]:
			return classRetry, true
		case code == "ValidationException", code == "ItemCollectionSizeLimitExceededException":
			return classReject, false
		case code == "ResourceNotFoundException", code == "AccessDeniedException",
			code == "UnrecognizedClientException", code == "InvalidSignatureException",
			code == "MissingAuthenticationTokenException", code == "ExpiredTokenException":
			return classFatal, false
		case code == "InternalServerError", code == "ServiceUnavailable", code == "InternalFailure",
			code == "TransactionConflictException", code == "ReplicatedWriteConflictException":
			return classRetry, false
		}
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() >= 500 {
		return classRetry, false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return classFatal, false
	}
	// Connection refused, reset, timeouts, and whatever else we cannot
	// name: retrying is the choice that never skips a record.
	return classRetry, false
}

// Explain turns an error from a setup call into one that says what to do.
func Explain(endpoint string, err error) error {
	var api smithy.APIError
	where := "DynamoDB"
	if endpoint != "" {
		where = "DynamoDB at " + endpoint
	}
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "UnrecognizedClientException", "InvalidSignatureException", "MissingAuthenticationTokenException", "ExpiredTokenException":
			return fmt.Errorf("%s rejected the AWS credentials: %w (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the role; DynamoDB Local accepts any key made of letters and digits)", where, err)
		case "AccessDeniedException":
			return fmt.Errorf("%s denied access: %w (grant the role dynamodb:DescribeTable, PutItem, GetItem, BatchGetItem, CreateTable and UpdateTimeToLive on the table)", where, err)
		}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("%s unreachable: %w (check --dynamodb-endpoint or the region, and that the service is running)", where, err)
	}
	if strings.Contains(err.Error(), "failed to retrieve credentials") || strings.Contains(err.Error(), "no EC2 IMDS role found") {
		return fmt.Errorf("no AWS credentials found: %w (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE; for DynamoDB Local any values work)", err)
	}
	return fmt.Errorf("%s: %w", where, err)
}
