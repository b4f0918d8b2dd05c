package dynamodb

import (
	"fmt"
	"testing"
	"time"

	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/cutover/cutover/checkpoint"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/sources/sourcetest"
)

// record appends the stream record of a change of item pk to shard.
func (f *fakeStreams) record(shard, pk, value string, remove bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appendLocked(shard, streamtypes.OperationTypeModify, pk, value, remove, time.Now().Truncate(time.Second))
}

// TestSourceContract runs the source contract over a table and its
// stream in memory: pages of 10 items, one open shard.
func TestSourceContract(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T) *sourcetest.Subject {
		streams := newFakeStreams()
		streams.addShard("s1", "", false)
		table := newPagedTable(0)
		table.arn = fakeTableDef.StreamARN
		change := func(pk, value string, remove bool) {
			table.fakeTable.mu.Lock()
			if remove {
				delete(table.items, pk)
			} else {
				table.items[pk] = value
			}
			table.fakeTable.mu.Unlock()
			streams.record("s1", pk, value, remove)
		}
		newSource := func(t *testing.T, mode Mode, pub pipeline.Publisher, ck checkpoint.Store) pipeline.Source {
			src, err := NewSource(table, streams, fakeTableDef, ScanOptions{Name: "p", Segments: 1, PageSize: 10},
				StreamOptions{Name: "p", PollInterval: time.Millisecond, RefreshEvery: 10 * time.Millisecond, Settle: 100 * time.Millisecond},
				mode, pub, ck)
			if err != nil {
				t.Fatal(err)
			}
			return src
		}
		return &sourcetest.Subject{
			Put:    func(_ *testing.T, key, value string) { change(key, value, false) },
			Delete: func(_ *testing.T, key string) { change(key, "", true) },
			Backfill: func(t *testing.T, pub pipeline.Publisher, ck checkpoint.Store) pipeline.Source {
				return newSource(t, Mode{SnapshotOnly: true}, pub, ck)
			},
			Replicate: func(t *testing.T, pub pipeline.Publisher, ck checkpoint.Store) pipeline.Source {
				return newSource(t, Mode{}, pub, ck)
			},
			Key: func(e pipeline.Event) string {
				attrs, err := pipeline.DecodeItemKey(e.Key)
				if err != nil {
					return fmt.Sprintf("undecodable %q", e.Key)
				}
				return attrs[0].Value.S
			},
			Value: func(e pipeline.Event) string { return e.Value.Item["v"].S },
		}
	})
}
