// Package report is what the pipeline commands tell their user: the
// progress log lines and the summary of a run (Reporter), the progress
// bars of a copy and of a comparison, the Prometheus collector and the
// readiness check of a running pipeline, and the text of the reports
// `cutover reconcile`, `status` and `drain` print.
//
// It reads the running stages through small interfaces declared here
// (Publisher, Worker, Sink, RedisSource, TableSource, GroupOffsets,
// CheckpointTimes) that cmd/cutover fills in Stages; a stage that does
// not run in the process is left nil and its lines are left out. Every
// number comes from the stages' own counters, read when a line, a
// summary or a scrape needs it, so nothing is counted twice.
//
// The output is an interface of its own: scripts and the end-to-end
// tests read the log attributes, the summary rows and the metric names,
// so a change to them is a change of the CLI.
package report
