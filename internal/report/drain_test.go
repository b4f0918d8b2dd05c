package report

import (
	"testing"

	"github.com/cutover/cutover/internal/config"
	"github.com/cutover/cutover/pipeline/kafka"
)

// A drain that did not finish says what it waits for: the source's
// barriers (with the Redis channel a Redis source answers on), or the
// sink group, with the records still to apply on the partitions behind.
func TestDrainProblem(t *testing.T) {
	cfg := config.Default()
	cfg.Name, cfg.Kafka.Topic, cfg.Kafka.Group = "orders", "cutover.orders", "orders-sink"
	parts := []kafka.DrainPartition{
		{Partition: 0, Target: 10, Lag: 0, CaughtUp: true},
		{Partition: 1, Target: -1, Lag: 1200},
		{Partition: 2, Target: 7, Lag: 3},
	}
	for _, tc := range []struct {
		name  string
		table string
		st    kafka.DrainStatus
		want  string
	}{
		{"redis source silent", "", kafka.DrainStatus{Requests: 2, Partitions: parts},
			"no drain barrier from the source on partitions 1 (requests sent: 2, on topic cutover.orders.control): " +
				"is `cutover replicate` of pipeline \"orders\" running (not a backfill) and its Redis user may use channel cutover:drain:orders? " +
				"Its log says why it did not answer"},
		{"dynamodb source, some barriers", "orders", kafka.DrainStatus{Requests: 1, Barriers: 2, Expected: 3, Partitions: parts},
			"no drain barrier from the source on partitions 1 (requests sent: 1, on topic cutover.orders.control): " +
				"is `cutover replicate` of pipeline \"orders\" running (not a backfill)? Its log says why it did not answer"},
		{"sink group behind", "", kafka.DrainStatus{Requests: 1, Barriers: 3, Expected: 3, CaughtUp: 1, Partitions: parts},
			"the sink group orders-sink has not applied everything up to the barriers: 1 of 3 partitions caught up, 1,203 records to go " +
				"(are its workers running? the report shows who owns each partition)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg.Source.DynamoDB.Table = tc.table
			if got := DrainProblem(&cfg, tc.st); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
