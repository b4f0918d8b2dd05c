// Package awsconn builds the AWS clients cutover uses (DynamoDB and
// DynamoDB Streams, for the source and the sink alike) from the default
// credential chain, optionally assuming a role in another account, with
// an endpoint override for DynamoDB Local. The SDK's own log messages go
// to cutover's slog logger. Clients keep the SDK's retryer: the callers
// own what happens after it gives up (docs/DESIGN.md §7).
package awsconn
