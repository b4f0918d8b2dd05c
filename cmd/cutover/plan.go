package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/report"
	"github.com/cutover/cutover/pipeline/plan"
	ddbsink "github.com/cutover/cutover/sinks/dynamodb"
	redissink "github.com/cutover/cutover/sinks/redis"
)

// exitPreflight is plan's exit status when a preflight check failed: the
// run cannot start as configured. It shares its number with drain's "not
// drained" (both say: not ready yet, look at the report).
const exitPreflight = exitNotDrained

// planFlags are plan's own options.
type planFlags struct {
	output          string
	sample          int64
	full            bool
	pricePerMillion float64
	pricePerWCUHour float64
	writesPerSecond float64
	finishWithin    time.Duration
}

func newPlanCmd() *cobra.Command {
	cfg := config.Default()
	var f planFlags
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Before a migration: check every connection, and estimate what it will move, what will not fit, its time and its cost",
		Long: `plan is read-only: it changes nothing on the source, the target or Kafka,
and creates no topic or table. It reports:

Preflight, each check ok or failed with the exact fix: the source (Redis:
reachable, keyspace notifications on or settable by the user, asked with
ACL DRYRUN or a CONFIG SET of the value the server has, and one key read
as the snapshot reads it; DynamoDB: the table, a one-item Scan, and its
stream with a view type that carries new images),
Kafka (reachable; the topic's partitions and max.message.bytes against
kafka.max_record_bytes, or that replicate would create it), and the
target (a DynamoDB table with the key the sink writes, or create_table;
a Redis master that takes writes).

What will move, from a random sample of about --sample keys (read as the
snapshot reads them; SCAN still walks every key of a Redis source, a
DynamoDB source is sampled by random Scan segments) or every key with
--full: keys by type, their size in Kafka (p50, p99, max), keys that
travel in pieces, keys that cannot be carried and why (a DynamoDB item
over 400 KB after the sink's mapping, a type the target cannot hold, a
key the mapping or a rule cannot map), the share with an expiry, each
share with its 95% upper bound, scaled to the whole keyspace (DBSIZE, or
the table's item count). The reads are paced as the backfill's
(source.redis.keys_per_second, source.dynamodb.read_capacity_per_second).

The projection: events and bytes into the topic, DynamoDB write units
(one per started KB of each item; a conditional put costs what a plain
one does) and their on-demand cost at --price-per-million-writes, the
time at --writes-per-second, the provisioned capacity that does it in that
time and its cost at --price-per-wcu-hour, and for a Redis target the
memory it needs (MEMORY USAGE of the sampled keys plus cutover's version
key per key). --finish-within suggests the write rate, sink workers,
partitions and DynamoDB warm throughput that finish in that time.

Exit status: 0 when the run can start, 5 when a preflight check failed,
2 for a configuration mistake, 1 on other errors.`,
		Example: `  cutover plan --config pipeline.yaml
  cutover plan --config pipeline.yaml --full --output json > plan.json
  cutover plan --config pipeline.yaml --sample 100000 --price-per-million-writes 0.7425 --writes-per-second 20000`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.Apply(cmd.Flags(), &cfg); err != nil {
				return err
			}
			if err := f.validate(); err != nil {
				return err
			}
			return runPlan(cmd.Context(), &cfg, &f, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	config.BindFlags(fs, &cfg)
	fs.StringVar(&f.output, "output", "text", "report format: text or json")
	fs.Int64Var(&f.sample, "sample", 10_000, "read a random sample of about this many keys")
	fs.BoolVar(&f.full, "full", false, "read every key instead of a sample: exact counts, at the cost of a full read")
	fs.Float64Var(&f.pricePerMillion, "price-per-million-writes", plan.DefaultPricePerMillionWrites,
		"US dollars per million DynamoDB write request units; the default is on-demand in us-east-1 as listed since 1 November 2024 (never fetched: give your region's)")
	fs.Float64Var(&f.pricePerWCUHour, "price-per-wcu-hour", plan.DefaultPricePerWCUHour,
		"US dollars per provisioned DynamoDB write capacity unit and hour; the default is us-east-1's (never fetched: give your region's)")
	fs.DurationVar(&f.finishWithin, "finish-within", 0,
		fmt.Sprintf("suggest the sink workers, partitions and DynamoDB throughput that copy everything within this time (e.g. 2h), at %d writes/s a worker", plan.DefaultWritesPerSecond))
	fs.Float64Var(&f.writesPerSecond, "writes-per-second", 0,
		fmt.Sprintf("write rate the duration is projected at (default sink.dynamodb.max_writes_per_second if set, else %d)", plan.DefaultWritesPerSecond))
	return cmd
}

func (f *planFlags) validate() error {
	var problems []string
	if p := outputProblem(f.output); p != "" {
		problems = append(problems, p)
	}
	if f.sample <= 0 {
		problems = append(problems, "--sample: must be positive")
	}
	if f.pricePerMillion < 0 {
		problems = append(problems, "--price-per-million-writes: must not be negative")
	}
	if f.writesPerSecond < 0 {
		problems = append(problems, "--writes-per-second: must not be negative")
	}
	if f.pricePerWCUHour < 0 {
		problems = append(problems, "--price-per-wcu-hour: must not be negative")
	}
	if f.finishWithin < 0 {
		problems = append(problems, "--finish-within: must not be negative")
	}
	if len(problems) > 0 {
		return &config.Error{Problems: problems}
	}
	return nil
}

func runPlan(ctx context.Context, cfg *config.Config, f *planFlags, out io.Writer) error {
	log := setup(cfg)
	p := &planner{cfg: cfg, log: log, flags: f, rep: plan.Report{Pipeline: cfg.Name, Source: cfg.DescribeSource(), Topic: cfg.Kafka.Topic,
		Table: cfg.Sink.DynamoDB.Table}}
	defer p.close()
	if r := cfg.Source.Redis; cfg.SourceKind() == "redis" {
		for _, f := range []struct {
			name string
			vals []string
		}{{"include", r.Include}, {"exclude", r.Exclude}, {"types", r.Types}} {
			if len(f.vals) > 0 {
				p.rep.Filters = append(p.rep.Filters, f.name+" "+strings.Join(f.vals, ", "))
			}
		}
	}
	sourceOK := p.checkSource(ctx)
	p.checkKafka(ctx)
	p.checkTarget(ctx)
	if sourceOK {
		est, err := p.sample(ctx)
		if err != nil {
			return err
		}
		proj := plan.Project(&est, p.rates(), cfg.SinkKind() == "redis")
		p.rep.Estimate, p.rep.Projection = &est, &proj
	}
	p.rep.Limits = plan.Limits(cfg.SinkKind() == "dynamodb", len(p.rep.Filters) > 0, p.whole)
	p.rep.Ready = !p.rep.Failed()
	if f.output == "json" {
		if err := report.WriteJSON(out, p.rep); err != nil {
			return err
		}
	} else {
		p.rep.Print(out)
	}
	if !p.rep.Ready {
		return &exitError{code: exitPreflight}
	}
	return nil
}

// planner holds what plan connected to.
type planner struct {
	cfg   *config.Config
	log   *slog.Logger
	flags *planFlags
	rep   plan.Report

	src    *wiring // the source's connections (no checkpoint store, no topics)
	router *ddbsink.Router
	// warmWrites is the target table's warm write throughput (the least
	// of its tables'), 0 when unknown.
	warmWrites int64
	// renderer maps items to a Redis target's keys (a DynamoDB source).
	renderer *redissink.Renderer
	// redisTarget is set for a Redis target that answered.
	redisTarget bool
	// whole is set when the sample is every key (--full, or a keyspace
	// no larger than --sample): the counts are exact.
	whole   bool
	closers []func()
}

func (p *planner) close() {
	if p.src != nil {
		p.src.close()
	}
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
}

// rates are what the projection is priced and timed at.
func (p *planner) rates() plan.Rates {
	r := plan.Rates{PricePerMillionWrites: p.flags.pricePerMillion, WritesPerSecond: p.flags.writesPerSecond,
		PricePerWCUHour: p.flags.pricePerWCUHour, FinishWithin: p.flags.finishWithin,
		WorkerWritesPerSecond: plan.DefaultWritesPerSecond, WarmWrites: p.warmWrites}
	if r.WritesPerSecond == 0 {
		r.WritesPerSecond = plan.DefaultWritesPerSecond
		if m := p.cfg.Sink.DynamoDB.MaxWritesPerSecond; m > 0 && p.cfg.SinkKind() == "dynamodb" {
			r.WritesPerSecond = float64(m)
		}
	}
	return r
}
