package redis

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cutover/cutover/internal/redisconn"
	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/stack"
)

// Each test here pins a defect an adversarial review of the page read
// found; each failed before its fix.

// The budget counted what a key adds to the reply, not the work its read
// costs: a string read in pieces costs a GETRANGE of the whole limit + 1
// bytes and counted 0, so any number of them went in one call (100
// strings of 800 KB: one call of 99 ms, 80 MB copied).
func TestPageBudgetCountsWhatAStringReadInPiecesCopied(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	c := src.Client
	var keys []string
	for i := range 200 {
		k := fmt.Sprintf("long:%03d", i)
		keys = append(keys, k)
		must(t, c.Set(ctx, k, strings.Repeat("v", 2000), 0).Err())
	}
	rd := NewReader(c, redisconn.Conn{Addr: src.Addr}, ReaderOptions{Name: "t", ChunkBytes: 1000, MaxRecordBytes: 1})
	rd.pageBytes = 4000
	must(t, rd.Prepare(ctx))
	must(t, c.ConfigResetStat(ctx).Err())
	_, counts, err := rd.Read(ctx, keys, pipeline.OriginSnapshot, nil)
	must(t, err)
	n := scriptCalls(ctx, t, c)
	t.Logf("%d big, %d script calls", len(counts.Big), n)
	if n == 1 {
		t.Errorf("one call copied %d bytes with GETRANGE against a budget of %d", 200*1001, rd.pageBytes)
	}
}

// MEMORY USAGE samples 16 nodes of a list: 3,200 small elements then five
// of 2 MB were estimated at 247 KB and read whole, a 10 MB event that
// Kafka refuses (dead-lettered, though it could go in pieces). What was
// read is now measured.
func TestListMemoryUnderestimatedIsReadInPieces(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	c := src.Client
	for i := range 16 * 200 {
		must(t, c.RPush(ctx, "l", fmt.Sprintf("%060d", i)).Err())
	}
	for range 5 {
		must(t, c.RPush(ctx, "l", strings.Repeat("L", 2_000_000)).Err())
	}
	rd := NewReader(c, redisconn.Conn{Addr: src.Addr}, ReaderOptions{Name: "t"})
	must(t, rd.Prepare(ctx))
	mem, _ := c.MemoryUsage(ctx, "l", 16).Result()
	t.Logf("mem %d llen %d", mem, c.LLen(ctx, "l").Val())
	b, counts, err := rd.Read(ctx, []string{"l"}, pipeline.OriginSnapshot, nil)
	must(t, err)
	if len(b.Events) == 1 {
		n := 0
		for _, e := range b.Events[0].Value.List {
			n += len(e)
		}
		t.Errorf("MEMORY USAGE said %d; read whole: %d bytes against ChunkBytes %d (big %v)", mem, n, 256<<10, counts.Big)
	}
}

// MEMORY USAGE samples 16 elements: a hash whose first fields are small
// and the rest large is estimated small and read whole, far over
// ChunkBytes (and over the page budget).
func TestHashMemoryUnderestimatedIsReadInPieces(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	c := src.Client
	for i := range 200 {
		v := "s"
		if i >= 150 {
			v = strings.Repeat("L", 20_000)
		}
		must(t, c.HSet(ctx, "h", fmt.Sprintf("f%03d", i), v).Err())
	}
	rd := NewReader(c, redisconn.Conn{Addr: src.Addr}, ReaderOptions{Name: "t", ChunkBytes: 64 << 10})
	must(t, rd.Prepare(ctx))
	mem, _ := c.MemoryUsage(ctx, "h", 16).Result()
	b, counts, err := rd.Read(ctx, []string{"h"}, pipeline.OriginSnapshot, nil)
	must(t, err)
	if len(b.Events) == 1 {
		n := 0
		for _, f := range b.Events[0].Value.Hash {
			n += len(f.Name) + len(f.Value)
		}
		t.Errorf("MEMORY USAGE said %d; read whole: %d bytes against ChunkBytes %d (big %v)", mem, n, 64<<10, counts.Big)
	}
}

// Strings at and around the whole-read limit, empty, binary and numeric,
// and keys repeated in a page split by the budget.
func TestPageReadStringEdges(t *testing.T) {
	ctx := context.Background()
	src := stack.NewRedis(t)
	c := src.Client
	vals := map[string]string{
		"exact": strings.Repeat("x", 1000), "over": strings.Repeat("y", 1001), "empty": "",
		"bin": "\x00\xff\x80a\x00", "int": "12345", "neg": "-0", "max": strings.Repeat("z", 999),
	}
	var keys []string
	for k, v := range vals {
		must(t, c.Set(ctx, k, v, 0).Err())
		keys = append(keys, k)
	}
	keys = append(keys, "exact", "bin") // repeated keys
	rd := NewReader(c, redisconn.Conn{Addr: src.Addr}, ReaderOptions{Name: "t", ChunkBytes: 1000, MaxRecordBytes: 1, MaxValueBytes: 5000})
	rd.pageBytes = 1500
	must(t, rd.Prepare(ctx))
	b, counts, err := rd.Read(ctx, keys, pipeline.OriginLive, nil)
	must(t, err)
	seen := map[string]int{}
	for _, e := range b.Events {
		seen[string(e.Key)]++
		if string(e.Value.String) != vals[string(e.Key)] || e.Op != pipeline.OpUpsert {
			t.Errorf("%q: op %v value %q", e.Key, e.Op, e.Value.String)
		}
	}
	t.Logf("seen %v big %+v", seen, counts.Big)
	if len(counts.Big) != 1 || counts.Big[0].Key != "over" || counts.Big[0].Size != 1001 {
		t.Errorf("big %+v", counts.Big)
	}
	if len(b.Events) != len(keys)-1 {
		t.Errorf("%d events for %d keys", len(b.Events), len(keys))
	}
}
