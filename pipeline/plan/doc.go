// Package plan estimates what a migration will move before it starts:
// the counts, sizes and outcomes of a sample of the source's keys, scaled
// to the whole keyspace with a 95% bound on every share, and projected
// into Kafka bytes, DynamoDB write units, cost, time and Redis memory.
//
//	source ──sample (read-only)──▶ Key per sampled key ──▶ Tally ──Estimate(total)──▶ Report
//	                                                                       └──Project(Rates)──▶ Projection
//
// It does no I/O: `cutover plan` (cmd/cutover) reads the sample through
// the pipeline's own source readers, and a Classifier judges each key
// with the target sink's own mapping (ItemMapper, Renderer, declared
// here and implemented by the sinks), so that what it counts is what a
// backfill would do.
package plan
