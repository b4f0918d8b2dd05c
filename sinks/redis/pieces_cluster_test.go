package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/stack"
)

// A big list's pieces split over several script calls of one pipeline,
// beside keys of other slots (other nodes): the pieces must land in
// order, every one of them.
func TestClusterPiecesAcrossCalls(t *testing.T) {
	c := stack.NewRedisCluster(t, 3, 0)
	ctx := context.Background()
	s := newSink(t, c.Client, Options{Addr: "cluster", Concurrency: 1})
	var evs []pipeline.Event
	elem := strings.Repeat("x", 100<<10)
	var off int64
	for i := range 12 {
		var list [][]byte
		for j := range 4 {
			list = append(list, []byte(fmt.Sprintf("%02d-%d-%s", i, j, elem)))
		}
		e := pipeline.Event{Key: []byte("big"), Op: pipeline.OpUpsert, Origin: pipeline.OriginLive, Version: clock(7),
			Chunk: &pipeline.Chunk{Index: i, Offset: off, Last: i == 11}, Value: pipeline.Value{Type: pipeline.TypeList, List: list}}
		off += 4
		evs = append(evs, e)
		for k := range 20 {
			evs = append(evs, str(fmt.Sprintf("o:%d:%d", i, k), clock(7), "v"))
		}
	}
	applyAll(t, s, evs)
	got := c.Client.LRange(ctx, "big", 0, -1).Val()
	if len(got) != 48 {
		t.Fatalf("big has %d elements, want 48", len(got))
	}
	for i, g := range got {
		if want := fmt.Sprintf("%02d-%d-", i/4, i%4); !strings.HasPrefix(g, want) {
			t.Fatalf("element %d starts %q, want %q", i, g[:6], want)
		}
	}
}
