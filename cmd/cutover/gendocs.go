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
		TopLevelKeys: []string{"name", "progress_interval", "metrics_addr", "memory_limit_mb"}, YAMLOnly: yamlOnlyDocs}
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

// yamlOnlyDocs describe the keys that no flag sets (a flag's help
// describes the others, and names its key).
var yamlOnlyDocs = map[string]string{
	"source.dynamodb.attributes.type":       "attribute holding a Redis key's type (default cutover_type)",
	"source.dynamodb.attributes.value":      "attribute holding a Redis key's value (default value)",
	"source.dynamodb.attributes.ttl":        "attribute holding a Redis key's expiry, epoch seconds (default expire_at)",
	"source.dynamodb.attributes.version":    "attribute holding the forward pipeline's version, not copied (default cutover_version)",
	"source.dynamodb.attributes.deleted":    "attribute marking a tombstone, read as the delete of its key (default cutover_deleted)",
	"kafka.sasl.password":                   "SASL password; prefer ${KAFKA_SASL_PASSWORD} in the file or the KAFKA_SASL_PASSWORD environment variable (never a flag)",
	"sink.dynamodb.rules":                   "rules mapping Redis keys to natural items of their own tables; the first rule whose match takes a key wins, keys no rule takes go to sink.dynamodb.table (or are dead-lettered)",
	"sink.dynamodb.rules[].match":           "Redis glob pattern of the keys the rule takes",
	"sink.dynamodb.rules[].table":           "table the rule's items are written to",
	"sink.dynamodb.rules[].key":             "key template: the table's key attributes as {placeholders} in the Redis key, e.g. user:{userId} or order:{userId}:{orderId}",
	"sink.dynamodb.rules[].key_types":       "type of each key attribute when cutover creates the table: S, N or B (default S)",
	"sink.dynamodb.rules[].fields":          "type of each hash field's attribute: string, number, binary or json (default string)",
	"sink.dynamodb.rules[].value_attribute": "attribute holding a Redis string's value (default value)",
	"sink.dynamodb.rules[].ttl_attribute":   "attribute holding the expiry (default sink.dynamodb.attributes.ttl)",
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
