// Package chaos is the writers and the checkers behind the chaos scenarios
// of test/chaos_test.go and test/chaos_full_test.go and the workflow test
// of test/workflow_test.go (short forms in make test, full ones in make
// chaos).
//
// The Writer (Redis strings) and the ItemWriter (DynamoDB items) give
// every value they write a sequence number larger than any before it, and
// a value unique to that write, so a lost event can never leave a final
// state identical to the right one.
//
// The checkers see every write, not samples: NotifyMonitor reads every
// key a Redis target changes, the whole run, and fails on its own errors
// or when it read nothing; CheckStream reads a DynamoDB target's own
// stream (on from the table's creation, CreateTargetTable) and checks
// every write in the order the table applied it. CompareStates (type,
// whole value, absolute expiry) runs once the writers stopped and the
// pipeline caught up, on ReadRedis or ReadTable states, and counts keys
// lost, deletes resurrected, values older than the source's and any other
// difference. HoldProxy stalls a sink worker's writes to a Redis target
// and counts the target's answers to them when they arrive late.
package chaos
