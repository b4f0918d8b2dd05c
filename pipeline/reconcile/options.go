package reconcile

import "time"

// Options tune a comparison.
type Options struct {
	// TTLTolerance is how far apart two expiries may be and still count as
	// equal; default 2s (DynamoDB stores whole seconds, rounded up).
	TTLTolerance time.Duration
	// Samples is how many keys to keep as examples of each kind of
	// difference; default 10.
	Samples int
	// Progress, if set, is called after each page with the report so far.
	Progress func(Report)
	// RecheckDelay is how long a difference is left to settle before it
	// is read again on both sides (changes still in flight clear); default
	// 2s. Rechecks is how many times it is read again before it counts;
	// default 3. They apply when the source is a Reader.
	RecheckDelay time.Duration
	Rechecks     int
	// Pending is how many differing keys wait for their re-check at most;
	// default 1000 (it bounds memory, not the number of differences).
	Pending int
	// Fraction is the share of the keyspace the source reads when
	// sampling (0 or 1: all of it); the report states the confidence.
	Fraction float64
	// Repair, if set, receives an event for every difference that
	// remains after its re-checks: the source's state read after the
	// target's, at a version newer than the one the target held (see
	// repairVersion). Extra keys get a delete only with DeleteExtra. A run
	// with repairs ends with Repair.Wait and a re-check of every repaired
	// key (Report.Remaining).
	Repair      Repairer
	DeleteExtra bool
	// ClockReads says the source stamps each read with the time it was
	// made, in the pipeline's epoch (Redis: the server's clock): a repair
	// then carries the read's version when it is newer than the target's,
	// and a key whose read is not, in the same epoch, is left unrepaired
	// (Report.RepairDeferred) — the source's clock disagrees with the
	// versions in the target. False for a source whose reads carry a
	// version that does not say when they were made (DynamoDB: a snapshot
	// row's): every repair is stamped just above the target's version.
	ClockReads bool
	// MaxRepairs bounds the repaired keys remembered for the final
	// re-check; default 1,000,000. Past it, repairs still go out but are
	// not re-checked (Report.Unverified).
	MaxRepairs int
}

func (o *Options) setDefaults() {
	if o.TTLTolerance <= 0 {
		o.TTLTolerance = 2 * time.Second
	}
	if o.Samples <= 0 {
		o.Samples = 10
	}
	if o.RecheckDelay <= 0 {
		o.RecheckDelay = 2 * time.Second
	}
	if o.Rechecks <= 0 {
		o.Rechecks = 3
	}
	if o.Pending <= 0 {
		o.Pending = 1000
	}
	if o.MaxRepairs <= 0 {
		o.MaxRepairs = 1_000_000
	}
}
