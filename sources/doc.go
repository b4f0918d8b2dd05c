// Package sources holds cutover's source connectors, one package per store:
// sources/redis reads Redis, sources/dynamodb reads DynamoDB. A source
// reads keys, turns them into pipeline.Events and hands them to a
// publisher; it never writes to a target.
package sources
