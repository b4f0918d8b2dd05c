package redis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/pipeline"
	"github.com/cutover/cutover/test/stack"
)

// TestWaitReplicas: with WaitReplicas the sink counts a write as applied
// only once that many replicas have it, and sends the pipeline again
// while fewer do: a write a failover could lose is never reported applied
// (its record never committed).
func TestWaitReplicas(t *testing.T) {
	master := stack.NewRedis(t)
	host, port, _ := strings.Cut(master.Addr, ":")
	replica := stack.NewRedis(t, "--replicaof", host, port)
	ctx := context.Background()
	for deadline := time.Now().Add(time.Minute); ; {
		info, _ := replica.Client.Info(ctx, "replication").Result()
		if strings.Contains(info, "master_link_status:up") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica did not connect within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ev := func(k string) []pipeline.Event {
		return []pipeline.Event{{Key: []byte(k), Op: pipeline.OpUpsert, Origin: pipeline.OriginLive, Version: pipeline.ClockVersion(0, 1, true),
			Value: pipeline.Value{Type: pipeline.TypeString, String: []byte("v")}}}
	}
	one, err := New(master.Client, Options{Addr: master.Addr, WaitReplicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := one.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := one.Apply(ctx, ev("k1"))
	if err != nil || res[0].Outcome != pipeline.Applied {
		t.Fatalf("one replica asked, one there: %+v, %v", res, err)
	}
	if v, _ := replica.Client.Get(ctx, "k1").Result(); v != "v" {
		t.Errorf("the replica holds %q once the write is applied, want v", v)
	}
	two, err := New(master.Client, Options{Addr: master.Addr, WaitReplicas: 2, WaitTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := two.Apply(short, ev("k2")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("two replicas asked, one there: Apply returned %v, want it to retry until stopped", err)
	}
	if two.Stats().Retries == 0 {
		t.Error("no retry counted while too few replicas took the writes")
	}
}
