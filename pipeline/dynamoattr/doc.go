// Package dynamoattr converts between the SDK's DynamoDB attribute values
// (of the dynamodb and dynamodbstreams clients, which have their own
// types) and pipeline.Attr, which events carry. Every conversion is
// lossless: numbers keep their decimal text, binary its bytes, sets their
// members.
package dynamoattr
