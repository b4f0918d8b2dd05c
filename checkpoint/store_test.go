package checkpoint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// storeContract is what every Store must do.
func storeContract(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.Load(ctx, "p/redis/10.0.0.1:6379/db0/snapshot"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of a missing name = %v, want ErrNotFound", err)
	}
	names := []string{"p/redis/10.0.0.1:6379/db0/snapshot", "p/redis/10.0.0.2:6379/db0/snapshot", "q/x", "p/weird name%2F/ü"}
	for i, n := range names {
		if err := s.Save(ctx, n, []byte{byte(i), 0, 0xff}); err != nil {
			t.Fatalf("Save(%q): %v", n, err)
		}
	}
	if err := s.Save(ctx, names[0], []byte("second")); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load(ctx, names[0])
	if err != nil || string(got) != "second" {
		t.Fatalf("Load after overwrite = %q, %v", got, err)
	}
	got, err = s.Load(ctx, names[3])
	if err != nil || !reflect.DeepEqual(got, []byte{3, 0, 0xff}) {
		t.Fatalf("Load(%q) = %v, %v", names[3], got, err)
	}
	list, err := s.List(ctx, "p/")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{names[0], names[1], names[3]}
	if !reflect.DeepEqual(list, want) {
		t.Fatalf("List(p/) = %q, want %q", list, want)
	}
	if err := s.Delete(ctx, names[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, names[0]); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := s.Load(ctx, names[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load after Delete = %v", err)
	}
	for _, bad := range []string{"", "a//b", "../x", "a/./b"} {
		if err := s.Save(ctx, bad, nil); err == nil {
			t.Fatalf("Save(%q) accepted an invalid name", bad)
		}
	}
}

func TestMemoryStore(t *testing.T) { storeContract(t, NewMemoryStore()) }

func TestFileStore(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	storeContract(t, s)

	// A crash between CreateTemp and Rename leaves a temp file behind; it
	// must not show up as a checkpoint nor break loading.
	if err := os.WriteFile(filepath.Join(dir, "q", ".tmp-123"), []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(context.Background(), "q")
	if err != nil || !reflect.DeepEqual(list, []string{"q/x"}) {
		t.Fatalf("List with a stray temp file = %q, %v", list, err)
	}

	// A second store on the same directory sees what the first saved: the
	// restart case.
	s2, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Load(context.Background(), "q/x"); err != nil || !reflect.DeepEqual(got, []byte{2, 0, 0xff}) {
		t.Fatalf("reopened Load = %v, %v", got, err)
	}
}

func TestFileStoreLock(t *testing.T) {
	s, err := NewFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := s.Lock("demo/source")
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to an open file: a second open in this process
	// stands for another process.
	if _, err := s.Lock("demo/source"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	unlock()
	unlock2, err := s.Lock("demo/source")
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}
