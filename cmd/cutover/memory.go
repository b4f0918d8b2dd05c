package main

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// defaultMemoryLimitMB is the default soft memory limit. cutover's own
// buffers (records waiting for Kafka, fetched records, events in flight)
// come to about 60 MiB at their fullest on the benchmark's backfill; the
// garbage collector's default of letting the heap grow to twice what is
// live would take the process near 200 MiB.
const defaultMemoryLimitMB = 100

// setup makes the logger the configuration asks for and sets the
// process's soft memory limit.
func setup(c *Config) *slog.Logger {
	log := newLogger(c)
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		log.Debug("memory limit from the environment", "GOMEMLIMIT", env)
	} else if c.MemoryLimitMB > 0 {
		// Soft: the runtime collects more often as the heap nears it,
		// and gives up holding to it rather than spend most of the CPU on
		// collection when more is live.
		debug.SetMemoryLimit(int64(c.MemoryLimitMB) << 20)
	}
	return log
}
