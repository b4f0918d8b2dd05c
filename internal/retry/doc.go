// Package retry is cutover's one way to retry a call: a thin layer over
// github.com/cenkalti/backoff/v4 with the two policies cutover needs.
//
//   - Forever retries until the call succeeds, fails permanently or ctx
//     ends. Sinks use it (a sink never skips a record: running out of
//     patience would), and so do the loops that run until stopped: a
//     stream shard, live capture's reconnect, its heals.
//   - For retries for a bounded time. Start-up and setup checks use it,
//     and reads of a snapshot page (two minutes), so that a server that
//     stays away fails the command with its last error.
//
// Loops that pace themselves (they call NextBackOff between attempts of
// their own) take a [backoff.BackOff] from New.
//
// Which errors are worth retrying is the caller's decision (a store's
// classifier says what an error is; the caller decides what to do with
// it): op returns [Permanent](err) to stop at once. One call has one
// retry owner: a call retried here runs with the client library's own
// retries off (docs/DESIGN.md §7).
//
// Every backoff is built from options, never by setting fields after
// NewExponentialBackOff: that takes its first interval when it is made,
// so fields set afterwards left the first wait at the library's 500 ms.
package retry
