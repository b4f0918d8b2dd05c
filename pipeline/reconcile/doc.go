// Package reconcile compares a source with a target, key by key, and
// reports the drift: keys missing in the target, keys whose value, type or
// expiry differ, keys the source could not express as events.
//
//	source pages (Source.Next) ──keys──▶ Target.Lookup ──▶ compare ──▶ Report
//
// It reads both stores through the same code the pipeline uses (the
// source's reader, the sink's mapping), so "equal" means "what the
// pipeline would have written is what the target holds".
//
// A difference is read again on both sides before it counts — the target
// first, then the source — and a repair carries the state of that second
// source read into the pipeline (recheck.go, repair.go).
package reconcile
