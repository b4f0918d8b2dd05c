// Command cutover-dev holds the helpers of the demo, the tests and the
// benchmarks that need test code (a seeded dataset, a fault-injecting
// proxy): they live here, not in the product binary cmd/cutover.
//
//	go run ./test/cmd/cutover-dev seed-redis --redis-addr 127.0.0.1:16379 --flush
//	go run ./test/cmd/cutover-dev dynamodb-fault-proxy --throttle 0.3
package main
