package main

import (
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/cutover/cutover/internal/config"
)

// setup makes the logger the configuration asks for and sets the
// process's soft memory limit.
func setup(c *config.Config) *slog.Logger {
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
