package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/cutover/cutover/pipeline/reconcile"
	ddbsrc "github.com/cutover/cutover/sources/dynamodb"
	redissrc "github.com/cutover/cutover/sources/redis"
)

func newReconcileCmd() *cobra.Command {
	cfg := defaultConfig()
	var output string
	var tolerance time.Duration
	var samples int
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Compare the source with the target key by key",
		Long: `reconcile walks the source (Redis with SCAN; a DynamoDB table with a
strongly consistent parallel Scan), reads each key as the pipeline would,
looks the key up in the target (DynamoDB: strongly consistent BatchGetItem
through the sink's mapping; Redis: the same atomic read as the source), and reports keys missing in the target and keys whose
type, value or expiry differ, with examples of each.

Use the same configuration as the pipeline (--config and flags). Exit
status: 0 when the target matches, 4 when differences were found, 1 on
errors.

A second pass walks the target and reports keys the source does not have
(or would not copy): deletes that were never applied.`,
		Example: `  cutover reconcile --config deploy/examples/redis-to-dynamodb.yaml
  cutover reconcile --config pipeline.yaml --output json > report.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd, &cfg); err != nil {
				return err
			}
			if output != "text" && output != "json" {
				return &configError{problems: []string{fmt.Sprintf("--output: %q must be text or json", output)}}
			}
			return runReconcile(cmd.Context(), &cfg, output, reconcile.Options{TTLTolerance: tolerance, Samples: samples}, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	bindPipeline(fs, &cfg)
	fs.StringVar(&output, "output", "text", "report format: text or json")
	fs.DurationVar(&tolerance, "ttl-tolerance", 2*time.Second, "largest difference between two expiries that still counts as equal")
	fs.IntVar(&samples, "samples", 10, "example keys shown for each kind of difference")
	return cmd
}

func runReconcile(ctx context.Context, cfg *Config, output string, opts reconcile.Options, w io.Writer) error {
	log := newLogger(cfg)
	wr, err := connect(ctx, cfg, log, parts{source: true, sink: true})
	if err != nil {
		return err
	}
	defer wr.close()
	src, err := wr.reconcileSource(ctx)
	if err != nil {
		return err
	}
	last := time.Now()
	opts.Progress = func(rep reconcile.Report) {
		if cfg.ProgressInterval > 0 && time.Since(last) >= cfg.ProgressInterval {
			last = time.Now()
			log.Info("reconcile progress", "compared", rep.Compared, "equal", rep.Equal, "differences", rep.Differences())
		}
	}
	rep, err := reconcile.Run(ctx, src, wr.sink, opts)
	if err != nil {
		return err
	}
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReport(w, cfg, wr.sink.describe(), &rep)
	}
	if rep.Differences() > 0 {
		return &exitError{code: exitDifferences}
	}
	return nil
}

// reconcileSource reads the source as reconcile compares it: a Redis
// database with SCAN and the pipeline's reader, or a DynamoDB table with a
// strongly consistent parallel Scan.
func (wr *wiring) reconcileSource(ctx context.Context) (reconcile.Source, error) {
	cfg := wr.cfg
	if cfg.sourceKind() == "dynamodb" {
		d := cfg.Source.DynamoDB
		return ddbsrc.NewPages(wr.ddb, *wr.dtable, ddbsrc.ScanOptions{Name: cfg.Name, Segments: d.Segments, PageSize: d.PageSize,
			ConsistentRead: true, Endpoint: d.Endpoint}), nil
	}
	r := cfg.Source.Redis
	types, err := parseTypes(r.Types)
	if err != nil {
		return nil, err
	}
	ropts := redissrc.ReaderOptions{Name: cfg.Name, Types: types, MaxElements: r.MaxElements, MaxValueBytes: r.MaxValueBytes,
		ChunkElements: r.ChunkElements, ChunkBytes: r.ChunkBytes, Logger: wr.log}
	shards, err := wr.sourceShards(ctx)
	if err != nil {
		return nil, err
	}
	var scanners []*redissrc.Scanner
	for _, sh := range shards {
		node, err := wr.openNode(ctx, sh)
		if err != nil {
			return nil, err
		}
		wr.closers = append(wr.closers, node.close)
		scanners = append(scanners, redissrc.NewScanner(node.cl, node.conn, filterOf(r), r.ScanCount, ropts))
	}
	var exists goredis.Cmdable = wr.rcl
	if wr.rccl != nil {
		exists = wr.rccl
	}
	src := redissrc.NewScanners(scanners, exists)
	if err := src.Prepare(ctx); err != nil {
		return nil, err
	}
	return src, nil
}

func printReport(w io.Writer, cfg *Config, target string, rep *reconcile.Report) {
	fmt.Fprintf(w, "\nreconcile %s → %s (%s)\n", cfg.describeSource(), target, rep.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  %-26s %12s\n", "keys compared", group(rep.Compared))
	fmt.Fprintf(w, "  %-26s %12s\n", "equal", group(rep.Equal))
	kinds := []struct {
		k     reconcile.Kind
		label string
	}{
		{reconcile.Missing, "missing in target"},
		{reconcile.Extra, "only in target"},
		{reconcile.Different, "different value or type"},
		{reconcile.TTLDifferent, "different expiry"},
		{reconcile.Unreadable, "unreadable in target"},
		{reconcile.Unaddressable, "key not valid in target"},
		{reconcile.NotComparable, "not comparable (source)"},
	}
	for _, k := range kinds {
		fmt.Fprintf(w, "  %-26s %12s\n", k.label, group(rep.Counts[k.k]))
	}
	for _, k := range kinds {
		samples := rep.Samples[k.k]
		if len(samples) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n  %s, for example:\n", k.label)
		slices.SortFunc(samples, func(a, b reconcile.Sample) int { return compareStrings(a.Key, b.Key) })
		for _, s := range samples {
			fmt.Fprintf(w, "    %q: %s\n", s.Key, s.Detail)
		}
	}
	if rep.Differences() == 0 {
		fmt.Fprintf(w, "\nthe target holds every source key with the same value and expiry\n")
	} else {
		fmt.Fprintf(w, "\n%s keys differ\n", group(rep.Differences()))
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
