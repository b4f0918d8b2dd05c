// Package test holds cutover's end-to-end tests. They run the real binary
// against real services: private redis-server processes, and the Kafka
// broker and DynamoDB Local of deploy/local/stack (make test starts them).
package test
