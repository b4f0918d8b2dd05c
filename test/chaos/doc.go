// Package chaos is the writers and the checkers behind the chaos scenarios
// of test/chaos_test.go and the workflow test of test/workflow_test.go
// (make chaos, and short forms in make test).
//
// The Writer (Redis strings) and the ItemWriter (DynamoDB items) give
// every value they write a sequence number larger than any before it, and
// a value unique to that write, so a lost event can never leave a final
// state identical to the right one.
//
// The checkers: Monitor samples the target while faults are injected;
// NotifyMonitor reads every key the target changes, continuously, and
// fails on its own errors; Compare (values) and CompareStates (type, whole
// value, absolute expiry) run once the writers have stopped and the
// pipeline caught up, and count keys lost, deletes resurrected, values
// older than the source's and any other difference.
package chaos
