package awsconn

import (
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
)

// A role ARN makes the AWS credentials assume that role (no AWS call is
// made until the first request).
func TestRoleARNAssumesTheRole(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	plain, err := Config(t.Context(), "us-east-1", "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	role, err := Config(t.Context(), "us-east-1", "arn:aws:iam::123456789012:role/cutover", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cache, ok := role.Credentials.(*aws.CredentialsCache)
	if !ok || !cache.IsCredentialsProvider(&stscreds.AssumeRoleProvider{}) {
		t.Fatalf("role credentials are %T, want an assume-role provider", role.Credentials)
	}
	if c, ok := plain.Credentials.(*aws.CredentialsCache); ok && c.IsCredentialsProvider(&stscreds.AssumeRoleProvider{}) {
		t.Fatal("no role ARN, yet an assume-role provider")
	}
}
