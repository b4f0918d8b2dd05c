// Package chaos is the writer and the checker behind the chaos scenarios
// of test/chaos_test.go (make chaos, and a short form in make test).
//
// The Writer gives every value it writes a sequence number larger than any
// before it; the Monitor reads the target while faults are injected and
// counts any key that goes backwards; Compare, once the writer has stopped
// and the pipeline caught up, counts keys lost, deletes resurrected,
// values older than the source's and any other difference.
package chaos
