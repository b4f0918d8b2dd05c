package kafka

import (
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func fetchError(err error) kgo.Fetches {
	return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "t", Partitions: []kgo.FetchPartition{{Partition: 0, Err: err}}}}}}
}

// A worker kicked out of its group (frozen past the session timeout)
// rejoins; a permission error stops it.
func TestFetchErrRejoinsAfterLosingTheGroup(t *testing.T) {
	w := &Worker{log: slog.New(slog.DiscardHandler)}
	if err := w.fetchErr(fetchError(&kgo.ErrGroupSession{Err: kerr.UnknownMemberID})); err != nil {
		t.Fatalf("losing the group session stopped the worker: %v", err)
	}
	if err := w.fetchErr(fetchError(kerr.TopicAuthorizationFailed)); err == nil {
		t.Fatal("an authorization error did not stop the worker")
	}
}
