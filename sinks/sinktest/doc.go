// Package sinktest is the contract every cutover sink must pass, run
// against the sink's real store: idempotent apply, no regression to an
// older version, no resurrection of a deleted key, truncate sweeps,
// (where supported) chunked values, and (for a Target that implements
// Faults) writes the store throttles or answers in part.
package sinktest
