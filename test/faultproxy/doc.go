// Package faultproxy puts a proxy in front of DynamoDB (Local) that
// injects DynamoDB's own failures on demand: throttling errors, exactly as
// the service sends them, and ambiguous successes (the request reaches
// the table, the response never reaches the client). Tests use it in
// process; "go run ./test/cmd/cutover-dev dynamodb-fault-proxy" runs it on its own.
package faultproxy
