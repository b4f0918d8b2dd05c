package dynamodb

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/smithy-go"
)

// deniedReads is a stream whose records cannot be read: every GetRecords
// is refused (the role lacks dynamodb:GetRecords, say). Listing shards
// and taking iterators work.
type deniedReads struct{ *fakeStreams }

func (deniedReads) GetRecords(context.Context, *dynamodbstreams.GetRecordsInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform dynamodb:GetRecords"}
}

// TestBackfillAgainEndsWhenItsStreamCannotBeRead: a backfill run again
// (its stream positions saved by an earlier run) now waits, before it
// scans, until the stream has handed over its backlog (awaitBacklog).
// That wait has no bound: a shard that cannot be read (every GetRecords
// refused; the reader logs and retries forever, as a stream reader must)
// never catches up, so the backfill never scans and never returns. Before
// the wait, the same backfill scanned, and Stream.settle gave up on the
// unreadable shard after its deadline with a warning; settle bounds its
// wait for exactly this reason ("a shard that cannot be read never
// settles"). A bounded command must not hang on it.
func TestBackfillAgainEndsWhenItsStreamCannotBeRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.readByTheRunBefore(t)
		src := h.sourceOver(t, h.table, deniedReads{h.streams}, Mode{SnapshotOnly: true})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx) }()
		select {
		case err := <-done:
			// Ending with an error that names the stream is fine too; the
			// scan not running at all is not.
			if err == nil && h.table.scanCount() == 0 {
				t.Error("the backfill ended without scanning the table")
			}
		case <-time.After(time.Hour): // virtual time: settle gives up after ~35s
			cancel()
			<-done
			t.Fatalf("the backfill neither scanned nor ended within an hour (table scans: %d): it waits for a backlog the stream cannot hand over",
				h.table.scanCount())
		}
	})
}

// getItemFails is a table whose GetItem fails (throttled beyond the SDK's
// retries, say): the stream's re-read of a record without a usable image
// fails, and the stream stops with that error.
type getItemFails struct{ *fakeTable }

func (getItemFails) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, errors.New("GetItem: throttled")
}

// TestRestartDoesNotScanWhenTheStreamStoppedBeforeItsBacklog: replicate
// --restart whose resumed stream stops with an error while the source
// waits for its backlog (a record without a usable image whose re-read
// fails). awaitBacklog returns nil when the stream stops, and the fresh
// scan runs anyway: a new epoch is saved and every row is published in
// it, with no stream running, and only then does Run return the stream's
// error. The backlog the wait was for is still unread: the next
// `replicate` (the scan is finished, so it does not scan) reads it in
// the new epoch, sequence numbers above the rows' 1, and the first of two
// writes made before the scan puts its older state over the row until the
// second comes — the regression 04a3dcb set out to close.
func TestRestartDoesNotScanWhenTheStreamStoppedBeforeItsBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness()
		h.readByTheRunBefore(t)
		h.scanned(t)
		// While replicate was stopped: two updates of a, then a change of
		// c whose record carries no image (it must be re-read).
		h.streams.put("s1", "a", false)
		h.streams.put("s1", "a", false)
		h.streams.put("s1", "c", false)
		h.streams.mu.Lock()
		h.streams.records["s1"][3].Dynamodb.NewImage = nil
		h.streams.mu.Unlock()
		h.table.items = map[string]string{"a": "100000000000000000003", "b": "1", "c": "1"}

		src := h.sourceOver(t, getItemFails{h.table}, h.streams, Mode{Restart: true})
		err := src.Run(context.Background())
		if err == nil {
			t.Fatal("replicate --restart ended without the stream's error")
		}
		if st := h.state(t); st.Epoch != "" && st.Epoch != "0" {
			t.Errorf("the stream stopped before handing over its backlog, yet a new epoch (%s) was started: "+
				"the next run reads that backlog in it, over the rows (Run: %v)", st.Epoch, err)
		}
		if n := h.table.scanCount(); n != 0 {
			t.Errorf("the table was scanned %d time(s) after the stream had stopped (Run: %v)", n, err)
		}
	})
}
