package main

import (
	"github.com/spf13/cobra"
)

// newDevCmd holds helpers for the documentation. It is hidden from
// --help: none of it belongs in a production runbook. The helpers that
// need test code (seeding a dataset, a fault proxy) are a separate
// program, test/cmd/cutover-dev, so that the product binary holds none.
func newDevCmd() *cobra.Command {
	dev := &cobra.Command{Use: "dev", Short: "Helpers for the documentation", Hidden: true}
	dev.AddCommand(newGenDocsCmd())
	return dev
}
