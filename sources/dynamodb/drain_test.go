package dynamodb

import (
	"testing"
	"time"
)

// A stream is caught up to a moment once a listing began after it and
// every listed shard is read to its end or up to that moment; a shard
// listed but not started yet (its parent still read) holds it back.
func TestStreamCaughtUp(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	after := t0.Add(15 * time.Second)
	st := NewStream(nil, nil, Table{}, StreamOptions{}, nil, nil)
	st.pos.Shards = map[string]*shardState{"closed": {Done: true}, "open": {}, "child": {}}
	if st.caughtUp(after) {
		t.Fatal("caught up before any listing")
	}
	st.sawListing(after.Add(-time.Second), nil)
	st.listed = []string{"closed", "open", "child"}
	st.caughtUpAt("open", after.Add(time.Second))
	st.caughtUpAt("child", after.Add(time.Second))
	if st.caughtUp(after) {
		t.Fatal("caught up with a listing from before the moment")
	}
	st.listedAt = after.Add(time.Second)
	if !st.caughtUp(after) {
		t.Fatal("not caught up with every shard read past the moment")
	}
	st.readTo["child"] = time.Time{} // not started yet
	if st.caughtUp(after) {
		t.Fatal("caught up with a child shard not read yet")
	}
	st.caughtUpAt("child", after.Add(-time.Second))
	if st.caughtUp(after) {
		t.Fatal("caught up with a shard read only up to before the moment")
	}
	st.caughtUpAt("child", after)
	if !st.caughtUp(after) {
		t.Fatal("not caught up with the child read up to the moment")
	}
}
