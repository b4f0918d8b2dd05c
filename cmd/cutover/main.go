// Command cutover copies and replicates key-value data between stores
// through Kafka: a source reads Redis or DynamoDB and publishes versioned
// change events, sink workers apply them idempotently to the target.
//
// This package only wires the pieces together and is the only place that
// exits, with one of the exitCodes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/profile"
	"github.com/cutover/cutover/internal/redisconn"
	"github.com/spf13/cobra"
)

// Exit codes; exitCodes says what each means.
const (
	exitOK           = 0
	exitFailed       = 1
	exitUsage        = 2
	exitDeadLettered = 3
	exitDifferences  = 4
	exitNotDrained   = 5
)

// exitCodes are what each exit code means, for runbooks and CI gates; the
// reference (cutover dev gen-docs) prints this table.
var exitCodes = []struct {
	code    int
	meaning string
}{
	{exitOK, "done: everything copied; replicate or sink stopped by SIGINT/SIGTERM; reconcile: the target matches (after --repair: nothing remains)"},
	{exitFailed, "failed; the message says why and what to do"},
	{exitUsage, "a usage or configuration mistake: bad flags, an invalid configuration file (every problem is listed)"},
	{exitDeadLettered, "done, but some keys were dead-lettered instead of copied (see the dead-letter topic)"},
	{exitDifferences, "reconcile found differences that remain"},
	{exitNotDrained, "drain: --timeout passed before every change was applied; the report names the partitions behind, their lag and the sink worker that owns each. plan: a preflight check failed; the report names each with its fix"},
}

// exitError carries an exit code other than exitFailed up to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitFailed
	var ee *exitError
	var ce *config.Error
	var ue *usageError
	switch {
	case errors.As(err, &ee):
		code = ee.code
		if ee.err == nil {
			return code
		}
	case errors.As(err, &ce), errors.As(err, &ue), strings.HasPrefix(err.Error(), "unknown command"):
		code = exitUsage
	}
	fmt.Fprintf(os.Stderr, "cutover: %v\n", err)
	return code
}

// stoppedWhileStarting turns the error of a long-running command stopped
// by SIGINT or SIGTERM before it was up (connecting, checking the topic)
// into a clean stop: nothing was read or applied yet, and a stop signal is
// how replicate and sink are meant to end.
func stoppedWhileStarting(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "cutover: stopped while starting; nothing was lost, run the command again to continue")
		return nil
	}
	return err
}

// usageError is a mistake on the command line: a bad flag or argument.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() + " (see --help)" }
func (e *usageError) Unwrap() error { return e.err }

// noArgs is cobra.NoArgs with a usageError.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)}
	}
	return nil
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "cutover",
		Short: "Copy and replicate key-value data between Redis and DynamoDB through Kafka",
		Long: `cutover moves a live service's data from one key-value store to another.

A source reads Redis (a SCAN snapshot, then keyspace notifications) or a
DynamoDB table (a parallel Scan, then its stream) and publishes one
versioned change event per key to a Kafka topic; sink workers
apply the events to DynamoDB or Redis with conditional writes, so an older
read can never overwrite a newer one and replays are harmless. Positions
are checkpointed on both sides: a restarted run continues where it stopped.

Configuration comes from a YAML file (--config; see deploy/examples), with
flags overriding it and ${VAR} in the file read from the environment.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	// A CPU profile of any command, and a heap profile at its peak, for
	// benchmarks (go tool pprof).
	var cpuProfile, heapProfile string
	root.PersistentFlags().StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile of the run to this file")
	root.PersistentFlags().StringVar(&heapProfile, "heap-profile", "", "write a heap profile, taken when the heap was largest, to this file")
	_ = root.PersistentFlags().MarkHidden("cpu-profile")
	_ = root.PersistentFlags().MarkHidden("heap-profile")
	var stopProfile func()
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		var err error
		stopProfile, err = profile.Start(cpuProfile, heapProfile)
		if _, bad := errors.AsType[*fs.PathError](err); bad {
			return &usageError{err} // a file that cannot be written
		}
		return err
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if stopProfile != nil {
			stopProfile()
		}
	}
	root.AddCommand(newBackfillCmd(), newReplicateCmd(), newSinkCmd(), newReplayCmd(), newReconcileCmd(), newPlanCmd(), newStatusCmd(), newDrainCmd(), newConfigCmd(), newDevCmd())
	return root
}

// newLogger makes the slog logger the configuration asks for. Logs go to
// stderr; summaries and reports go to stdout.
func newLogger(c *config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Log.Level)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if c.Log.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	log := slog.New(h).With("pipeline", c.Name)
	redisconn.SetLogger(log.With("component", "go-redis"))
	return log
}
