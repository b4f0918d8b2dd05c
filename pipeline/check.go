package pipeline

// Check is one step of a read-only preflight check of a store or of
// Kafka: what `cutover plan` asks of each before a run. The store's
// package knows what to ask and how to explain the answer; plan only
// lists the steps.
type Check struct {
	// Name says what was checked ("source redis 10.0.0.1:6379").
	Name string
	// Detail says what was found when the check passed.
	Detail string
	// Err, when set, is what failed and how to fix it.
	Err error
}

// Passed is a check that passed, with what it found.
func Passed(name, detail string) Check { return Check{Name: name, Detail: detail} }

// Failed is a check that failed with err.
func Failed(name string, err error) Check { return Check{Name: name, Err: err} }
