package dynamodb

import "github.com/cutover/cutover/internal/dynamoerr"

// grants are the permissions the sink needs on its table, named when
// DynamoDB denies access.
const grants = "dynamodb:DescribeTable, PutItem, GetItem, BatchGetItem, CreateTable and UpdateTimeToLive on the table"

// explain turns an error from DynamoDB into one that says what to do.
func explain(endpoint string, err error) error { return dynamoerr.Explain(endpoint, grants, err) }
