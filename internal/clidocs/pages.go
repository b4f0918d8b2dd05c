package clidocs

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
	"github.com/spf13/pflag"
)

// Source is everything the reference is rendered from.
type Source struct {
	// Root is the command tree as the binary builds it. Pages adds cobra's
	// default completion command and version flag to it, as Execute
	// would, and changes it otherwise only to leave out the generator's
	// dated tag: hand it a tree built for the purpose.
	Root *cobra.Command
	// Config is the configuration with its defaults: a struct whose fields
	// are the YAML keys (yaml tags name them; nested structs are sections,
	// slices of structs lists of sections).
	Config any
	// KeyName is the YAML key of one of Config's fields ("-": none), as
	// the configuration's loader names it.
	KeyName func(reflect.StructField) string
	// Flags are the flags bound to the configuration. A flag's help names
	// its key in parentheses, "(kafka.topic)" or "(kafka.topic; default
	// cutover.<name>)"; that help, without the key, describes the key.
	Flags *pflag.FlagSet
	// TopLevelKeys are the keys without a dot a flag's help may name
	// ("name"): other parenthesized words are not keys.
	TopLevelKeys []string
	// YAMLOnly describe the keys that no flag sets.
	YAMLOnly map[string]string
	// Rules are the configuration's checks, each listed under its key or
	// section.
	Rules []Rule
	// PipelineMetrics are the metrics of the pipeline commands,
	// ReconcileMetrics those of reconcile --every.
	PipelineMetrics, ReconcileMetrics []Metric
	// ExitCodes are what each exit status means.
	ExitCodes []ExitCode
}

// Rule is one check of the configuration.
type Rule struct {
	// Key is a YAML key or a section ("" is the top level).
	Key string
	// Doc states the rule in words.
	Doc string
}

// ExitCode is one exit status and what it means.
type ExitCode struct {
	Code    int
	Meaning string
}

// Pages renders every reference page: path relative to the reference
// directory → content. The output depends on its input alone: no dates,
// no environment, every list in a fixed order.
func Pages(s *Source) (map[string][]byte, error) {
	pages := map[string][]byte{}
	if err := cliPages(s.Root, pages); err != nil {
		return nil, err
	}
	cfg, err := configPage(s)
	if err != nil {
		return nil, err
	}
	pages["config.md"] = cfg
	pages["metrics.md"] = metricsPage(s.PipelineMetrics, s.ReconcileMetrics)
	pages["exit-codes.md"] = exitCodesPage(s.ExitCodes)
	pages["README.md"] = []byte(Mark + `# Reference

Generated from the code by ` + "`make docs`" + ` and checked by ` + "`make test`" + `: what is
written here is what the binary does.

* [Commands and flags](cli/cutover.md): every command, with its help and flags.
* [Configuration file](config.md): every YAML key, its type, default, flag and checks.
* [Metrics](metrics.md): every metric cutover serves on ` + "`/metrics`" + `.
* [Exit codes](exit-codes.md).
`)
	return pages, nil
}

// cliPages renders one page per command with cobra's own generator, as
// the binary has them (hidden commands such as dev left out).
func cliPages(root *cobra.Command, pages map[string][]byte) error {
	root.InitDefaultCompletionCmd()
	root.InitDefaultVersionFlag()
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		c.DisableAutoGenTag = true // the tag carries today's date
		var b bytes.Buffer
		b.WriteString(Mark)
		if err := doc.GenMarkdownCustom(c, &b, func(s string) string { return s }); err != nil {
			return err
		}
		pages["cli/"+strings.ReplaceAll(c.CommandPath(), " ", "_")+".md"] = b.Bytes()
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand() {
				continue
			}
			if err := walk(sub); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}

func exitCodesPage(codes []ExitCode) []byte {
	var b strings.Builder
	b.WriteString(Mark)
	b.WriteString("# Exit codes\n\nEvery command exits with one of these; the message on stderr says what to do.\n\n| code | meaning |\n|---|---|\n")
	for _, e := range codes {
		fmt.Fprintf(&b, "| `%d` | %s |\n", e.Code, cell(e.Meaning))
	}
	return []byte(b.String())
}

func codeOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

// cell makes text safe in a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
