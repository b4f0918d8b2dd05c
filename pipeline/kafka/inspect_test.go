package kafka

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

func TestCheckTopic(t *testing.T) {
	ctx := ctxT(t)
	cfg := fakeCluster(t, "events", "small")
	cl, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	small := "1000"
	if _, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &small}}, "small"); err != nil {
		t.Fatal(err)
	}
	opts := TopicCheckOptions{Partitions: 12, ReplicationFactor: -1, MaxRecordBytes: 1_000_000, Broker: "b:9092"}
	for _, c := range []struct {
		topic  string
		exists bool
		want   string // the start of the detail, or of the error
		failed bool
	}{
		{"missing", false, "does not exist: replicate and backfill create it with 12 partitions, replication factor the cluster's default", false},
		{"events", true, "exists: 3 partitions, replication factor 1, max.message.bytes ", false},
		{"small", true, "max.message.bytes is 1000, below kafka.max_record_bytes 1000000", true},
	} {
		t.Run(c.topic, func(t *testing.T) {
			check, exists := CheckTopic(ctx, cl, c.topic, opts)
			if check.Name != "topic "+c.topic || exists != c.exists || (check.Err != nil) != c.failed {
				t.Fatalf("CheckTopic = %+v, exists %v; want exists %v, failed %v", check, exists, c.exists, c.failed)
			}
			got := check.Detail
			if check.Err != nil {
				got = check.Err.Error()
				if !strings.Contains(got, "--bootstrap-server b:9092 --alter --entity-type topics --entity-name small --add-config max.message.bytes=1000000") {
					t.Errorf("the fix does not name the command: %s", got)
				}
			}
			if !strings.HasPrefix(got, c.want) {
				t.Errorf("got %q, want it to start with %q", got, c.want)
			}
		})
	}
}
