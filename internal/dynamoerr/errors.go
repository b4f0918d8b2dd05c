package dynamoerr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// Class is what an error from DynamoDB says about making the call again.
type Class int

const (
	// Transient will go away: a 5xx, a transaction conflict, a dropped
	// connection, and whatever else cannot be named (retrying is the
	// choice that never skips a record).
	Transient Class = iota
	// Throttled is transient too, and says the table or the account is
	// over its capacity: slow down.
	Throttled
	// ConditionFailed means a conditional write's condition failed: the
	// table holds what the condition guards against (for a versioned
	// write, this version or a newer one).
	ConditionFailed
	// Invalid means this request can never succeed as it is: a value
	// DynamoDB refuses, an item too large, an item collection full.
	Invalid
	// Denied means nothing will succeed until someone acts: the
	// credentials are refused, or a permission is missing.
	Denied
	// Missing means the table is not there (ResourceNotFoundException).
	Missing
	// Stopped means the call's context was cancelled or ran out of time.
	Stopped
)

// String names the class, for logs and tests.
func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Throttled:
		return "throttled"
	case ConditionFailed:
		return "condition failed"
	case Invalid:
		return "invalid"
	case Denied:
		return "denied"
	case Missing:
		return "missing"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// throttleCodes are the error codes DynamoDB answers when a table or the
// account is over its capacity.
var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"TooManyRequestsException":               true,
}

// credentialCodes refuse the credentials themselves.
var credentialCodes = map[string]bool{
	"UnrecognizedClientException":         true,
	"InvalidSignatureException":           true,
	"MissingAuthenticationTokenException": true,
	"ExpiredTokenException":               true,
}

// Classify says what err, returned by a DynamoDB call (possibly
// wrapped), means for making the call again.
func Classify(err error) Class {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ConditionFailed
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		switch {
		case throttleCodes[code]:
			return Throttled
		case code == "ValidationException", code == "ItemCollectionSizeLimitExceededException":
			return Invalid
		case code == "ResourceNotFoundException":
			return Missing
		case code == "AccessDeniedException", credentialCodes[code]:
			return Denied
		case code == "InternalServerError", code == "ServiceUnavailable", code == "InternalFailure",
			code == "TransactionConflictException", code == "ReplicatedWriteConflictException":
			return Transient
		}
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() >= 500 {
		return Transient
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Stopped
	}
	return Transient
}

// Explain turns an error from DynamoDB into one that names the service
// and says what to do. endpoint is the endpoint cutover was given ("" for
// AWS's); grant lists the permissions the caller needs, named in the
// advice when access is denied ("dynamodb:DescribeTable, PutItem on the
// table"). Errors it does not recognise come back wrapped with where.
func Explain(endpoint, grant string, err error) error {
	where := "DynamoDB"
	if endpoint != "" {
		where = "DynamoDB at " + endpoint
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch code := api.ErrorCode(); {
		case credentialCodes[code]:
			return fmt.Errorf("%s rejected the AWS credentials: %w (check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the role; DynamoDB Local accepts any key made of letters and digits)", where, err)
		case code == "AccessDeniedException":
			return fmt.Errorf("%s denied access: %w (grant the role %s)", where, err, grant)
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
