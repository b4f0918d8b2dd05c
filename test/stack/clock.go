package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Clock steps the wall clock of one redis-server, not the machine's: the
// server runs with libfaketime preloaded (Debian package faketime, which
// deploy/local/stack installs with Redis), reading its offset from a file
// on every clock call.
//
// Two details make libfaketime work with Debian's redis-server:
//   - jemalloc and libfaketime clash (libfaketime issue #130): jemalloc
//     reads the clock while it initialises, libfaketime then looks up the
//     real clock_gettime with dlsym, which allocates through jemalloc
//     again, and the server hangs. glibc is preloaded after libfaketime,
//     so malloc resolves to glibc's and the recursion never happens
//     (jemalloc is still linked: INFO memory and MEMORY work as before).
//   - FAKETIME_DONT_FAKE_MONOTONIC: only the wall clock steps, as an NTP
//     step does; the monotonic clock Redis uses for timers keeps going.
type Clock struct {
	file string
	r    *Redis
}

// NewRedisClock starts a redis-server (extra arguments as NewRedis) whose
// wall clock Step moves.
func NewRedisClock(t testing.TB, extra ...string) (*Redis, *Clock) {
	t.Helper()
	lib := findLib(t, "/usr/lib/*/faketime/libfaketime.so.1", "libfaketime (Debian package faketime)")
	libc := findLib(t, "/lib/*-linux-gnu/libc.so.6", "glibc")
	file := filepath.Join(t.TempDir(), "faketime.rc")
	if err := os.WriteFile(file, []byte("+0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := NewRedisEnv(t, []string{
		"LD_PRELOAD=" + lib + " " + libc,
		"FAKETIME_TIMESTAMP_FILE=" + file,
		"FAKETIME_NO_CACHE=1", // read the file on every clock call: a step takes effect at once
		"FAKETIME_DONT_FAKE_MONOTONIC=1",
	}, extra...)
	return r, &Clock{file: file, r: r}
}

func findLib(t testing.TB, pattern, what string) string {
	t.Helper()
	m, _ := filepath.Glob(pattern)
	if len(m) == 0 {
		t.Fatalf("%s is not installed (no %s)\ninstall it with `deploy/local/stack up redis` (make test does this)", what, pattern)
	}
	return m[0]
}

// Step sets the server's wall clock to the real time plus offset (whole
// seconds; negative steps it back) and waits until the server's TIME
// shows it, within half a second.
func (c *Clock) Step(ctx context.Context, offset time.Duration) error {
	secs := int64(offset / time.Second)
	spec := strconv.FormatInt(secs, 10)
	if secs >= 0 {
		spec = "+" + spec
	}
	// Written aside and renamed: the server reads the file at any moment,
	// and must never see it half written.
	tmp := c.file + ".new"
	if err := os.WriteFile(tmp, []byte(spec+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the faketime file: %w", err)
	}
	if err := os.Rename(tmp, c.file); err != nil {
		return fmt.Errorf("write the faketime file: %w", err)
	}
	want := time.Duration(secs) * time.Second
	deadline := time.Now().Add(10 * time.Second)
	for {
		before := time.Now()
		now, err := c.r.Client.Time(ctx).Result()
		skew := now.Sub(before) - want
		if err == nil && skew > -500*time.Millisecond && skew < 500*time.Millisecond {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("read TIME of the stepped redis-server: %w", err)
			}
			return fmt.Errorf("the redis-server's clock did not step to %v within 10s: TIME is %v off the real clock", want, now.Sub(before))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
