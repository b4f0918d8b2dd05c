package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is returned by Load when nothing was saved under a name.
var ErrNotFound = errors.New("no checkpoint")

// Store saves and loads positions by name. Names are slash-separated paths
// such as "demo/redis/127.0.0.1:6379/db0/snapshot"; each part must be
// non-empty and must not be "." or "..". Implementations are safe for
// concurrent use.
type Store interface {
	// Load returns the position saved under name, or an error wrapping
	// ErrNotFound.
	Load(ctx context.Context, name string) ([]byte, error)
	// Save durably replaces the position saved under name: when Save
	// returns nil, a crash of the process or the machine keeps it.
	Save(ctx context.Context, name string, pos []byte) error
	// Delete forgets name; deleting a missing name is not an error.
	Delete(ctx context.Context, name string) error
	// List returns the names saved under prefix (a path prefix, "" for all).
	List(ctx context.Context, prefix string) ([]string, error)
}

// ValidName checks the rules of Store names.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("checkpoint name is empty")
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("checkpoint name %q: every part between slashes must be non-empty, and not \".\" or \"..\"", name)
		}
		if strings.ContainsRune(part, 0) {
			return fmt.Errorf("checkpoint name %q contains a NUL byte", name)
		}
	}
	return nil
}
