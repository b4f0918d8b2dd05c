package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/cutover/cutover/internal/config"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

func newConfigCmd() *cobra.Command {
	root := &cobra.Command{Use: "config", Short: "Check a pipeline's configuration"}
	cfg := config.Default()
	var show bool
	validate := &cobra.Command{
		Use:   "validate",
		Short: "Report every problem in a configuration, with its path in the file",
		Long: `validate reads the configuration the way every command does (--config,
then ${VAR} from the environment, then flags), checks it, and reports
every problem with its path in the file, e.g.

  sink.dynamodb.region: required

It connects to nothing. Exit status 0 when the configuration is valid, 2
when it is not. --print writes the complete configuration as the commands
would use it, defaults included, with passwords replaced by "***".`,
		Example: `  cutover config validate --config deploy/examples/redis-to-dynamodb.yaml
  cutover config validate --config pipeline.yaml --print`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.Apply(cmd.Flags(), &cfg); err != nil {
				return err
			}
			return printValidConfig(cmd.OutOrStdout(), &cfg, show)
		},
	}
	config.BindFlags(validate.Flags(), &cfg)
	validate.Flags().BoolVar(&show, "print", false, "print the complete configuration (passwords hidden)")
	root.AddCommand(validate)
	return root
}

func printValidConfig(w io.Writer, cfg *config.Config, show bool) error {
	target := "dynamodb " + cfg.Sink.DynamoDB.Table
	switch {
	case cfg.SinkKind() == "redis":
		target = fmt.Sprintf("redis %s db %d", cfg.Sink.Redis.Addr, cfg.Sink.Redis.DB)
	case len(cfg.Sink.DynamoDB.Rules) > 0:
		tables := make([]string, 0, len(cfg.Sink.DynamoDB.Rules))
		for _, r := range cfg.Sink.DynamoDB.Rules {
			tables = append(tables, r.Table)
		}
		target = "dynamodb tables " + strings.Join(tables, ", ")
	}
	fmt.Fprintf(w, "configuration ok: pipeline %q: %s → kafka topic %s (%s) → %s\n", cfg.Name, cfg.DescribeSource(),
		cfg.Kafka.Topic, strings.Join(cfg.Kafka.Brokers, ","), target)
	if !show {
		return nil
	}
	out, err := yaml.Marshal(config.Redacted(*cfg))
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}
