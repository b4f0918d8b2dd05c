package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cutover/cutover/internal/clidocs"
	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/internal/metrics"
	"github.com/cutover/cutover/pipeline/reconcile"
)

// The reference pages under docs/reference are generated from the code
// (cutover dev gen-docs, make docs), never written by hand: the CLI from
// the commands themselves, the YAML keys from Config, config.Default, the
// flags that name each key and configRules, the metrics from their
// declarations, and the exit codes from exitCodes. internal/clidocs
// renders them; a unit test regenerates them and fails when the
// checked-in pages differ, so the reference cannot drift from the code.

func newGenDocsCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "gen-docs",
		Short: "Write the reference pages (CLI, configuration, metrics, exit codes) generated from the code",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := writeReference(dir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d reference pages to %s\n", n, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "docs/reference", "directory to write the pages to")
	return cmd
}

// writeReference writes every reference page under dir and removes the
// generated pages that are no longer generated.
func writeReference(dir string) (int, error) {
	pages, err := referencePages()
	if err != nil {
		return 0, err
	}
	return clidocs.Write(dir, pages)
}

// referencePages renders every reference page: path relative to the
// reference directory → content.
func referencePages() (map[string][]byte, error) {
	defaults := config.Default()
	flags := pflag.NewFlagSet("pipeline", pflag.ContinueOnError)
	config.BindFlags(flags, &defaults)
	src := clidocs.Source{Root: newRoot(), Config: defaults, KeyName: config.KeyName, Flags: flags,
		TopLevelKeys: []string{"name", "progress_interval", "metrics_addr", "memory_limit_mb"}, YAMLOnly: config.YAMLOnlyDocs}
	for _, r := range config.Rules {
		src.Rules = append(src.Rules, clidocs.Rule{Key: r.Key, Doc: r.Doc})
	}
	for _, e := range exitCodes {
		src.ExitCodes = append(src.ExitCodes, clidocs.ExitCode{Code: e.code, Meaning: e.meaning})
	}
	var err error
	if src.PipelineMetrics, err = pipelineMetricDocs(); err != nil {
		return nil, err
	}
	if src.ReconcileMetrics, err = reconcileMetricDocs(); err != nil {
		return nil, err
	}
	return clidocs.Pages(&src)
}

// pipelineMetricDocs are the metrics of the pipeline commands, in the
// order declared; reconcileMetricDocs those of reconcile --every.
func pipelineMetricDocs() ([]clidocs.Metric, error) {
	out := make([]clidocs.Metric, 0, len(metrics.Pipeline)+1)
	for _, m := range metrics.Pipeline {
		kind := "counter"
		if m.Kind == prometheus.GaugeValue {
			kind = "gauge"
		}
		out = append(out, clidocs.Metric{Name: m.Name, Kind: kind, Help: m.Help, Labels: m.Labels})
	}
	lag, err := clidocs.Describe(metrics.NewLagHistogram())
	return append(out, lag...), err
}

func reconcileMetricDocs() ([]clidocs.Metric, error) {
	m := metrics.NewReconcile()
	m.Observe(&reconcile.Report{}) // a vector shows its labels once it has a child
	return clidocs.Describe(m.Collectors()...)
}
