package main

import (
	"context"
	"io"

	"github.com/cutover/cutover/internal/config"
	"github.com/spf13/cobra"
)

func newBackfillCmd() *cobra.Command {
	cfg := config.Default()
	return newBackfillCmdWith(&cfg)
}

// newBackfillCmdWith binds the command's flags to cfg, which holds the
// defaults they show.
func newBackfillCmdWith(cfg *config.Config) *cobra.Command {
	var restart bool
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Copy every key of a Redis database (or item of a DynamoDB table) to the target through Kafka, then exit",
		Long: `backfill snapshots one Redis logical database with SCAN, publishes one
versioned event per key to a Kafka topic, applies the events to the target
(a DynamoDB table, or a Redis database) with a sink worker in the same
process, and exits once every event published by the snapshot has been
applied (or dead-lettered).

An interrupted backfill resumes from its checkpointed SCAN cursor when run
again with the same --name and --checkpoint-dir; the sink resumes from its
consumer group's committed offsets. Repeating events is harmless: every
write is conditional on the event's version.

Keys that cannot be copied (too large for a Kafka record or a DynamoDB
item, a key that is not valid UTF-8 for an S key attribute, an unsupported
type such as a Redis stream) are reported, counted and written to the
dead-letter topic; backfill then exits with status 3.

With --source-table the source is a DynamoDB table instead: a parallel
Scan (--scan-segments), resumable per segment, paced by
--read-capacity-per-second.

For a copy that then keeps following changes, use replicate.`,
		Example: `  cutover backfill --config deploy/examples/redis-to-dynamodb.yaml
  cutover backfill --redis-addr 10.0.0.5:6379 --kafka-brokers kafka:9092 \
      --dynamodb-table users --create-table --include 'user:*' --name users
  cutover backfill --source-table orders --target-redis-addr 10.0.0.7:6379 \
      --target-key-template 'order:{userId}:{orderId}' --name orders`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.Apply(cmd.Flags(), cfg); err != nil {
				return err
			}
			return runBackfill(cmd.Context(), cfg, restart, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	config.BindFlags(fs, cfg)
	fs.BoolVar(&restart, "restart", false, "discard an unfinished snapshot's checkpoint and start over")
	return cmd
}

func runBackfill(ctx context.Context, cfg *config.Config, restart bool, out io.Writer) error {
	return runReplicate(ctx, cfg, replicateMode{snapshotOnly: true, restart: restart}, "backfill", out)
}
