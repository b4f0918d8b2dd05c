package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// FileStore keeps each position in its own file under a directory. Name
// parts are path-escaped, so names may hold any characters (a node address
// "10.0.0.1:6379" becomes one file name).
type FileStore struct {
	dir string
	mu  sync.Mutex // serialises writers of one process; rename is atomic for readers
}

var _ Store = (*FileStore)(nil)

// NewFileStore returns a store rooted at dir, creating dir if needed.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("checkpoint directory %s: %w (choose a writable --checkpoint-dir)", dir, err)
	}
	return &FileStore{dir: dir}, nil
}

// Dir is the directory the store writes to.
func (s *FileStore) Dir() string { return s.dir }

func (s *FileStore) path(name string) (string, error) {
	if err := ValidName(name); err != nil {
		return "", err
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return filepath.Join(append([]string{s.dir}, parts...)...) + ".ckpt", nil
}

// Modified returns when checkpoint name was last saved.
func (s *FileStore) Modified(name string) (time.Time, error) {
	p, err := s.path(name)
	if err != nil {
		return time.Time{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return time.Time{}, fmt.Errorf("checkpoint %s: %w", name, err)
	}
	return fi.ModTime(), nil
}

// Load implements Store.
func (s *FileStore) Load(_ context.Context, name string) ([]byte, error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p) //nolint:gosec // p is under the store's own directory; name parts are escaped
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %s: %w", name, err)
	}
	return b, nil
}

// Save implements Store: write a temp file in the same directory, fsync
// it, rename it over the old file, fsync the directory.
func (s *FileStore) Save(_ context.Context, name string, pos []byte) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(pos); err != nil {
		tmp.Close() //nolint:gosec // the write error is the one to report
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close() //nolint:gosec // the sync error is the one to report
		return fmt.Errorf("save checkpoint %s: fsync: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", name, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir) //nolint:gosec // dir is under the store's own root
	if err != nil {
		return fmt.Errorf("fsync checkpoint directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync checkpoint directory %s: %w", dir, err)
	}
	return nil
}

// Delete implements Store.
func (s *FileStore) Delete(_ context.Context, name string) error {
	p, err := s.path(name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete checkpoint %s: %w", name, err)
	}
	return syncDir(filepath.Dir(p))
}

// List implements Store.
func (s *FileStore) List(_ context.Context, prefix string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".ckpt") || strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(s.dir, strings.TrimSuffix(p, ".ckpt"))
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		for i, part := range parts {
			if parts[i], err = url.PathUnescape(part); err != nil {
				return nil //nolint:nilerr // not a file this store wrote
			}
		}
		name := strings.Join(parts, "/")
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list checkpoints in %s: %w", s.dir, err)
	}
	sort.Strings(names)
	return names, nil
}
