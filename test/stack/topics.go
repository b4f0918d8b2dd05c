package stack

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DeleteOwnTopics deletes from the local stack's Kafka the topics that
// this test process named (Unique puts its pid in each name). Without it
// the shared broker keeps every test's topics, run after run: thousands
// of partitions that a restart of the broker loads one by one, for
// minutes.
func DeleteOwnTopics(ctx context.Context) error {
	addr := env("CUTOVER_KAFKA_BROKERS", "127.0.0.1:"+env("CUTOVER_KAFKA_PORT", "19092"))
	c, err := net.DialTimeout("tcp", strings.Split(addr, ",")[0], 3*time.Second)
	if err != nil {
		return nil // no broker: no test of this run made a topic there
	}
	c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list the topics of %s: %w", addr, err)
	}
	mark := fmt.Sprintf("-%d-", os.Getpid())
	var own []string
	for _, name := range topics.Names() {
		if strings.Contains(name, mark) {
			own = append(own, name)
		}
	}
	for start := 0; start < len(own); start += 100 {
		res, err := adm.DeleteTopics(ctx, own[start:min(start+100, len(own))]...)
		if err != nil {
			return fmt.Errorf("delete %d topics of this test run: %w", len(own), err)
		}
		if err := res.Error(); err != nil {
			return fmt.Errorf("delete %d topics of this test run: %w", len(own), err)
		}
	}
	return nil
}
