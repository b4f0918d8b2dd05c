// Package sinks holds cutover's sinks, one package per target store:
// sinks/dynamodb writes DynamoDB, sinks/redis writes Redis. A sink applies
// events it is given by a pipeline/kafka.Worker; it never reads Kafka
// itself and never imports a source.
package sinks
