package dynamoerr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// httpErr is an error that carries an HTTP status, as the SDK's
// response errors do.
type httpErr int

func (e httpErr) Error() string       { return fmt.Sprintf("http %d", int(e)) }
func (e httpErr) HTTPStatusCode() int { return int(e) }

func apiErr(code string) error {
	return fmt.Errorf("operation PutItem: %w", &smithy.GenericAPIError{Code: code, Message: "m"})
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Class
	}{
		{"condition failed", fmt.Errorf("put: %w", &types.ConditionalCheckFailedException{}), ConditionFailed},

		{"provisioned throughput", &types.ProvisionedThroughputExceededException{}, Throttled},
		{"throttling", apiErr("ThrottlingException"), Throttled},
		{"request limit", apiErr("RequestLimitExceeded"), Throttled},
		{"too many requests", apiErr("TooManyRequestsException"), Throttled},

		{"validation", apiErr("ValidationException"), Invalid},
		{"item collection full", &types.ItemCollectionSizeLimitExceededException{}, Invalid},

		{"table gone", &types.ResourceNotFoundException{}, Missing},

		{"access denied", apiErr("AccessDeniedException"), Denied},
		{"unknown key", apiErr("UnrecognizedClientException"), Denied},
		{"bad signature", apiErr("InvalidSignatureException"), Denied},
		{"no token", apiErr("MissingAuthenticationTokenException"), Denied},
		{"expired token", apiErr("ExpiredTokenException"), Denied},

		{"internal error", &types.InternalServerError{}, Transient},
		{"unavailable", apiErr("ServiceUnavailable"), Transient},
		{"transaction conflict", apiErr("TransactionConflictException"), Transient},
		{"replicated write conflict", apiErr("ReplicatedWriteConflictException"), Transient},
		{"a 5xx", httpErr(503), Transient},
		{"dropped connection", &net.OpError{Op: "read", Net: "tcp", Err: io.ErrUnexpectedEOF}, Transient},
		{"unnamed", errors.New("something else"), Transient},
		{"unknown code", apiErr("SomethingNewException"), Transient},

		{"cancelled", fmt.Errorf("put: %w", context.Canceled), Stopped},
		{"deadline", context.DeadlineExceeded, Stopped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	const grant = "dynamodb:PutItem on the table"
	for _, tc := range []struct {
		name     string
		endpoint string
		err      error
		want     []string
	}{
		{"denied names the caller's permissions", "", apiErr("AccessDeniedException"), []string{"DynamoDB denied access", "grant the role " + grant}},
		{"credentials", "http://127.0.0.1:18000", apiErr("UnrecognizedClientException"), []string{"DynamoDB at http://127.0.0.1:18000 rejected the AWS credentials", "AWS_ACCESS_KEY_ID"}},
		{"unreachable", "http://127.0.0.1:1", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, []string{"unreachable", "--dynamodb-endpoint"}},
		{"no credentials", "", errors.New("failed to retrieve credentials: no EC2 IMDS role found"), []string{"no AWS credentials found"}},
		{"other", "", errors.New("boom"), []string{"DynamoDB: boom"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Explain(tc.endpoint, grant, tc.err)
			if !errors.Is(got, tc.err) {
				t.Errorf("Explain does not wrap the error: %v", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("Explain = %q, want it to say %q", got, w)
				}
			}
		})
	}
}
