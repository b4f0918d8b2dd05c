package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/internal/report"
	"github.com/cutover/cutover/pipeline/reconcile"
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
	redissrc "github.com/cutover/cutover/sources/redis"
)

// reconcileFlags are reconcile's own options.
type reconcileFlags struct {
	output        string
	opts          reconcile.Options
	repair        bool
	repairTimeout time.Duration
	sample        int64
	percent       float64
	every         time.Duration
}

func newReconcileCmd() *cobra.Command {
	cfg := config.Default()
	var f reconcileFlags
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Compare the source with the target key by key, and repair the drift",
		Long: `reconcile walks the source (Redis with SCAN; a DynamoDB table with a
strongly consistent parallel Scan), reads each key as the pipeline would,
looks the key up in the target (DynamoDB: strongly consistent BatchGetItem
through the sink's mapping; Redis: the same atomic read as the source),
then walks the target for keys the source does not have. It reports keys
missing in the target, only in the target, and whose type, value or
expiry differ, with examples of each.

A key that differs is read again on both sides after --recheck-delay, up
to --rechecks times, before it counts: a change still on its way through
the pipeline clears, and the report says how many did.

--repair publishes the source's current state of every key that still
differs into the pipeline's topic, read after the target's and stamped
just newer than the target's version, so the sink workers apply it in
order with live changes and a change made meanwhile still wins (keys only
in the target are deleted only with --delete-extra). A key whose source
read is not newer than the target's version though it was made later
(the source's clock is behind) is not repaired; the next run checks it
again. If no worker is running, reconcile applies the repairs itself. It
then reads every repaired key again.

--percent or --sample compares a random share of the keys and reports a
95% upper bound on the share of all keys that differ. --every repeats the
comparison at that interval until stopped (shadow validation during a
cutover), exposing the results as Prometheus metrics on --metrics-addr.

Use the same configuration as the pipeline (--config and flags). Exit
status: 0 when the target matches (after a repair: when nothing remains),
4 when differences remain, 1 on errors, 2 on a usage or config mistake.`,
		Example: `  cutover reconcile --config deploy/examples/redis-to-dynamodb.yaml
  cutover reconcile --config pipeline.yaml --repair --delete-extra
  cutover reconcile --config pipeline.yaml --percent 1 --output json > report.json
  cutover reconcile --config pipeline.yaml --sample 100000 --every 10m --metrics-addr :9464`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.Apply(cmd.Flags(), &cfg); err != nil {
				return err
			}
			if err := f.validate(); err != nil {
				return err
			}
			return runReconcile(cmd.Context(), &cfg, &f, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	config.BindFlags(fs, &cfg)
	fs.StringVar(&f.output, "output", "text", "report format: text or json")
	fs.DurationVar(&f.opts.TTLTolerance, "ttl-tolerance", 2*time.Second, "largest difference between two expiries that still counts as equal")
	fs.IntVar(&f.opts.Samples, "samples", 10, "example keys shown for each kind of difference")
	fs.DurationVar(&f.opts.RecheckDelay, "recheck-delay", 2*time.Second, "how long a difference may settle before it is read again on both sides")
	fs.IntVar(&f.opts.Rechecks, "rechecks", 3, "how many times a difference is read again before it counts")
	fs.BoolVar(&f.repair, "repair", false, "publish the source's state of every key that differs into the pipeline, wait until it is applied, and check again")
	fs.BoolVar(&f.opts.DeleteExtra, "delete-extra", false, "with --repair: delete keys that are only in the target")
	fs.DurationVar(&f.repairTimeout, "repair-timeout", 10*time.Minute, "with --repair: how long to wait for the sink to apply the repairs")
	fs.Int64Var(&f.sample, "sample", 0, "compare a random sample of about this many keys")
	fs.Float64Var(&f.percent, "percent", 0, "compare a random sample of this percentage of the keys (0 < P ≤ 100)")
	fs.DurationVar(&f.every, "every", 0, "repeat the comparison at this interval until stopped (continuous shadow validation)")
	return cmd
}

func (f *reconcileFlags) validate() error {
	var problems []string
	if p := outputProblem(f.output); p != "" {
		problems = append(problems, p)
	}
	if f.percent < 0 || f.percent > 100 {
		problems = append(problems, fmt.Sprintf("--percent: %v must be between 0 and 100", f.percent))
	}
	if f.sample < 0 {
		problems = append(problems, "--sample: must not be negative")
	}
	if f.sample > 0 && f.percent > 0 {
		problems = append(problems, "--sample and --percent: give one of them")
	}
	if f.opts.DeleteExtra && !f.repair {
		problems = append(problems, "--delete-extra: only with --repair")
	}
	if f.every < 0 {
		problems = append(problems, "--every: must not be negative")
	}
	if len(problems) > 0 {
		return &config.Error{Problems: problems}
	}
	return nil
}

// reconcileSource is what reconcile reads the source through.
type reconcileSource interface {
	reconcile.Source
	reconcile.Reader
	reconcile.Checker
	SetSample(fraction float64)
}

func runReconcile(ctx context.Context, cfg *config.Config, f *reconcileFlags, w io.Writer) error {
	log := setup(cfg)
	wr, err := connect(ctx, cfg, log, parts{source: true, sink: true, publisher: f.repair, repairs: f.repair})
	if err != nil {
		return err
	}
	defer wr.close()
	var rm *metrics.Reconcile
	if cfg.MetricsAddr != "" {
		rm = metrics.NewReconcile()
		if err := metrics.Serve(ctx, cfg.MetricsAddr, cfg.Name, log, nil, rm.Collectors()...); err != nil {
			return err
		}
	}
	opts := f.opts
	if f.repair {
		opts.Repair = &repairer{wr: wr, timeout: f.repairTimeout}
	}
	for {
		rep, err := reconcileOnce(ctx, wr, f, opts)
		if err != nil {
			if f.every > 0 && ctx.Err() != nil {
				return nil
			}
			return err
		}
		rm.Observe(&rep)
		if f.output == "json" {
			enc := json.NewEncoder(w)
			if f.every == 0 {
				enc.SetIndent("", "  ")
			}
			if err := enc.Encode(rep); err != nil {
				return err
			}
		} else {
			report.PrintReconcile(w, cfg, wr.sink.describe(), &rep)
		}
		if f.every == 0 {
			if rep.Unresolved() > 0 || report.UnreadableItems(cfg, &rep) > 0 {
				return &exitError{code: exitDifferences}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(f.every):
		}
	}
}

// reconcileOnce runs one comparison: it sizes the sample, shows progress,
// and compares.
func reconcileOnce(ctx context.Context, wr *wiring, f *reconcileFlags, opts reconcile.Options) (reconcile.Report, error) {
	src, size, err := wr.reconcileSource(ctx)
	if err != nil {
		return reconcile.Report{}, err
	}
	defer wr.closeRound()
	opts.Fraction = 1
	// Redis reads carry the server's clock; a DynamoDB item read now
	// carries a snapshot row's version, older than the stream's.
	opts.ClockReads = wr.cfg.SourceKind() != "dynamodb"
	switch {
	case f.percent > 0 && f.percent < 100:
		opts.Fraction = f.percent / 100
	case f.sample > 0 && size > f.sample:
		opts.Fraction = float64(f.sample) / float64(size)
	}
	src.SetSample(opts.Fraction)
	bar := report.NewBar(wr.log, wr.cfg.ProgressInterval, int64(float64(size)*opts.Fraction), f.output == "text")
	defer bar.Finish()
	opts.Progress = bar.Update
	return reconcile.Run(ctx, src, wr.sink, opts)
}

// reconcileSource reads the source as reconcile compares it: a Redis
// database with SCAN and the pipeline's reader, or a DynamoDB table with a
// strongly consistent parallel Scan. size is the number of keys it holds,
// as far as the store knows (DBSIZE; DynamoDB's item count, updated about
// every six hours).
func (wr *wiring) reconcileSource(ctx context.Context) (reconcileSource, int64, error) {
	cfg := wr.cfg
	if cfg.SourceKind() == "dynamodb" {
		d := cfg.Source.DynamoDB
		return ddbsrc.Compare(ctx, wr.ddb, *wr.dtable, wr.store,
			ddbsrc.ScanOptions{Name: cfg.Name, Segments: d.Segments, PageSize: d.PageSize, Endpoint: d.Endpoint})
	}
	r := cfg.Source.Redis
	types, err := parseTypes(r.Types)
	if err != nil {
		return nil, 0, err
	}
	src, size, closeNodes, err := wr.topology().Compare(ctx, wr.store, redissrc.CompareOptions{Filter: filterOf(r), ScanCount: r.ScanCount,
		Reader: redissrc.ReaderOptions{Name: cfg.Name, Types: types, MaxElements: r.MaxElements, MaxValueBytes: r.MaxValueBytes,
			ChunkElements: r.ChunkElements, ChunkBytes: r.ChunkBytes, Logger: wr.log}})
	if err != nil {
		return nil, 0, err
	}
	wr.roundClosers = append(wr.roundClosers, closeNodes)
	return src, size, nil
}

// closeRound closes what one comparison opened.
func (wr *wiring) closeRound() {
	for i := len(wr.roundClosers) - 1; i >= 0; i-- {
		wr.roundClosers[i]()
	}
	wr.roundClosers = nil
}
