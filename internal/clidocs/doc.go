// Package clidocs renders cutover's reference pages (docs/reference) from
// the code: the CLI from the cobra command tree, the YAML keys from the
// configuration's type, its defaults and the flags that name each key,
// the configuration's checks, the metrics from their declarations and the
// exit codes. `cutover dev gen-docs` (make docs) writes them; a unit test
// of cmd/cutover regenerates them and fails when the checked-in pages
// differ, so the reference cannot drift from the code.
//
// It knows nothing of cutover's configuration or commands: cmd/cutover
// hands everything in as a [Source].
package clidocs
