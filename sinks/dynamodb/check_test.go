package dynamodb

import (
	"errors"
	"testing"
	"time"

	"github.com/cutover/cutover/pipeline"
)

// TestRouterItem: what plan sizes is what Apply would write, and what
// Apply would reject is unmappable.
func TestRouterItem(t *testing.T) {
	users, err := New(nil, Options{Table: "users", Rule: &Rule{Match: "user:*", Key: "user:{id}"}})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRouter([]Route{{Match: "user:*", Sink: users}}, nil)
	now := time.Now()
	up := func(key string) pipeline.Event {
		return pipeline.Event{Key: []byte(key), Op: pipeline.OpUpsert, Version: pipeline.Version{1},
			Value: pipeline.Value{Type: pipeline.TypeHash, Hash: []pipeline.Field{{Name: []byte("name"), Value: []byte("ada")}}}}
	}
	e := up("user:1")
	item, err := r.Item(&e, now)
	if err != nil {
		t.Fatalf("user:1: %v", err)
	}
	if n := ItemSize(item); n < int64(len("id")+1+len("name")+3) {
		t.Errorf("item %v of %d bytes", item, n)
	}
	e = up("order:1")
	if _, err := r.Item(&e, now); !errors.Is(err, pipeline.ErrUnmappable) {
		t.Errorf("a key no rule takes, without a default table: %v, want unmappable", err)
	}
	e = up("user:2")
	e.Chunk = &pipeline.Chunk{}
	if _, err := r.Item(&e, now); !errors.Is(err, pipeline.ErrUnmappable) {
		t.Errorf("a piece of a big key: %v, want unmappable", err)
	}
}
