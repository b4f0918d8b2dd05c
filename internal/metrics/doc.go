// Package metrics is cutover's Prometheus plumbing: the HTTP server of
// /metrics, /healthz and /readyz, the declarations of the metrics the
// pipeline commands serve, the end-to-end lag histogram, and reconcile's
// round results (reconcile --every). The values come from the running
// stages' own counters, read by internal/report's collector at scrape time.
package metrics
