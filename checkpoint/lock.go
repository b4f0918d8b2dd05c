package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked is returned by Lock when another process holds the lock.
var ErrLocked = errors.New("locked by another process")

// Lock takes the exclusive lock name in the store's directory, held until
// unlock is called or the process ends, whatever way it ends (an OS file
// lock: a SIGKILLed holder leaves no stale lock). It fails at once with
// an error wrapping ErrLocked, naming the holder's process ID, when
// another process holds it. It guards processes sharing one checkpoint
// directory on one machine.
func (s *FileStore) Lock(name string) (unlock func(), err error) {
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	p = strings.TrimSuffix(p, ".ckpt") + ".lock"
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600) //nolint:gosec // p is under the store's own directory
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(p) //nolint:gosec // as above
		f.Close()                   //nolint:gosec // the lock error is the one to report
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (process %s)", ErrLocked, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close() //nolint:gosec // releasing
	}, nil
}
