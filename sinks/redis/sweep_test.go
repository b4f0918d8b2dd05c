package redis

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/stack"
)

// TestItemsSweepLeavesOtherPipelinesKeys: several DynamoDB pipelines may
// share a Redis target when their key templates do not overlap. A heal's
// truncate (scope: everything) used to be swept by an item sink without
// the template and without the partition filter: every key of the whole
// target older than the truncate was deleted and tombstoned — another
// pipeline's keys, and keys no pipeline wrote. The sweep now reads each
// Redis key back into its item key and covers only this pipeline's.
func TestItemsSweepLeavesOtherPipelinesKeys(t *testing.T) {
	ctx := context.Background()
	r := stack.NewRedis(t)
	newSink := func(tmpl, attr string) *Sink {
		s, err := New(r.Client, Options{Addr: r.Addr, Items: &ItemOptions{KeyTemplate: tmpl, Key: []KeyAttrSchema{{attr, "S"}}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Prepare(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	orders := newSink("order:{id}", "id") // pipeline A
	users := newSink("user:{uid}", "uid") // pipeline B, same target, its template does not overlap

	item := func(attr, v string, epoch uint64, seq string) pipeline.Event {
		ver, err := pipeline.SequenceVersion(epoch, seq)
		if err != nil {
			t.Fatal(err)
		}
		a := pipeline.Attr{Kind: pipeline.AttrS, S: v}
		return pipeline.Event{Key: pipeline.EncodeItemKey([]pipeline.KeyAttr{{Name: attr, Value: a}}), Op: pipeline.OpUpsert,
			Origin: pipeline.OriginLive, Version: ver, Value: pipeline.Value{Type: pipeline.TypeItem, Item: map[string]pipeline.Attr{attr: a}}}
	}
	// Pipeline B (epoch 0, never healed) wrote user:1; A wrote order:7 in its epoch 1.
	if _, err := users.Apply(ctx, []pipeline.Event{item("uid", "1", 0, "100000000000000000001")}); err != nil {
		t.Fatal(err)
	}
	if _, err := orders.Apply(ctx, []pipeline.Event{item("id", "7", 1, "1")}); err != nil {
		t.Fatal(err)
	}
	// A key no pipeline wrote.
	if err := r.Client.Set(ctx, "app:config", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// A heals a gap: epoch 1, scan (order:7 re-read at (1,1)), then its
	// truncate at (1, 0), one copy per partition, as Publisher.Broadcast sends it.
	since, _ := pipeline.SequenceVersion(1, "0")
	for p := range int32(4) {
		tr := pipeline.Event{Op: pipeline.OpTruncate, Origin: pipeline.OriginLive, Version: since,
			Scope: &pipeline.Scope{Partition: p, Partitions: 4}}
		if _, err := orders.Apply(ctx, []pipeline.Event{tr}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"order:7", "user:1", "app:config"} {
		if n, err := r.Client.Exists(ctx, k).Result(); err != nil || n != 1 {
			t.Errorf("%s is gone after pipeline A's heal sweep (exists=%d, err=%v)", k, n, err)
		}
	}
	// And B's next change of user:1 (epoch 0) now loses to A's tombstone.
	if _, err := users.Apply(ctx, []pipeline.Event{item("uid", "1", 0, "100000000000000000002")}); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.Client.Exists(ctx, "user:1").Result(); n != 1 {
		t.Errorf("pipeline B's later change of user:1 was skipped: A's sweep tombstone outranks B's epoch-0 versions")
	}
}

// TestOwnedSweepLeavesKeysThePipelineNeverWrote: the reverse pipeline of
// a roll-back (a table of Redis keys → the old Redis) writes into a
// database that holds keys the forward pipeline never carried — a stream,
// a key its filters left out. A heal's truncate (scope: everything) swept
// every key without a version key, so a gap in the table's stream deleted
// them from the store being rolled back to. With SweepOwnedOnly the sweep
// deletes only keys this pipeline wrote.
func TestOwnedSweepLeavesKeysThePipelineNeverWrote(t *testing.T) {
	ctx := context.Background()
	r := stack.NewRedis(t)
	s, err := New(r.Client, Options{Addr: r.Addr, SweepOwnedOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	old, _ := pipeline.SequenceVersion(0, "100000000000000000001")
	str := func(k string) pipeline.Event {
		return pipeline.Event{Key: []byte(k), Op: pipeline.OpUpsert, Origin: pipeline.OriginLive, Version: old,
			Value: pipeline.Value{Type: pipeline.TypeString, String: []byte("v")}}
	}
	if _, err := s.Apply(ctx, []pipeline.Event{str("written"), str("deleted-in-the-gap")}); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Client.Set(ctx, "local:cache", "x", 0).Err())
	must(r.Client.XAdd(ctx, &goredis.XAddArgs{Stream: "events", Values: []string{"f", "v"}}).Err())
	// The heal re-read "written" in epoch 1; "deleted-in-the-gap" is gone
	// from the source, so only the truncate speaks of it.
	healed, _ := pipeline.SequenceVersion(1, "1")
	since, _ := pipeline.SequenceVersion(1, "0")
	e := str("written")
	e.Version = healed
	if _, err := s.Apply(ctx, []pipeline.Event{e}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, []pipeline.Event{{Op: pipeline.OpTruncate, Origin: pipeline.OriginLive, Version: since,
		Scope: &pipeline.Scope{Partition: 0, Partitions: 1}}}); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]int64{"written": 1, "deleted-in-the-gap": 0, "local:cache": 1, "events": 1} {
		if n, err := r.Client.Exists(ctx, k).Result(); err != nil || n != want {
			t.Errorf("%s: exists=%d after the sweep, want %d (err %v)", k, n, want, err)
		}
	}
	// Reconcile's walk of the target lists this pipeline's keys only: the
	// others are the old store's own, not keys the source lost.
	var listed []string
	must(s.ListKeys(ctx, func(keys [][]byte) error {
		for _, k := range keys {
			listed = append(listed, string(k))
		}
		return nil
	}))
	if len(listed) != 1 || listed[0] != "written" {
		t.Errorf("ListKeys gave %q, want only the key the pipeline wrote", listed)
	}
}
