package stack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/cutover once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		dir, err := os.MkdirTemp("", "cutover-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "cutover")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/cutover")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/cutover: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Result is the outcome of running the binary.
type Result struct {
	Code   int
	Stdout string
	Stderr string
}

// Run runs the binary with args until it exits or ctx ends.
func Run(ctx context.Context, t testing.TB, args ...string) Result {
	t.Helper()
	return RunEnv(ctx, t, nil, args...)
}

// RunEnv is Run with extra environment variables (NAME=value), which win
// over the process' own and LocalAWSEnv.
func RunEnv(ctx context.Context, t testing.TB, env []string, args ...string) Result {
	t.Helper()
	cmd := exec.CommandContext(ctx, Binary(t), args...)
	cmd.Env = append(append(append(os.Environ(), LocalAWSEnv...), env...), "NO_COLOR=1")
	// A run that outlives the test's deadline dumps its goroutines
	// (SIGQUIT) into stderr, so a hang is diagnosable from the failure.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok { //nolint:errorlint // exec returns it unwrapped
		res.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run cutover %v: %v", args, err)
	}
	return res
}

// Proc is the binary running in the background.
type Proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout strings.Builder
	stderr strings.Builder
	done   chan struct{}
	code   int
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Start runs the binary in the background. The test's cleanup kills it if
// it still runs.
func Start(t testing.TB, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{done: make(chan struct{})}
	p.cmd = exec.Command(Binary(t), args...)
	p.cmd.Env = append(append(append(os.Environ(), LocalAWSEnv...), env...), "NO_COLOR=1")
	p.cmd.Stdout = lockedWriter{&p.mu, &p.stdout}
	p.cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start cutover %v: %v", args, err)
	}
	go func() {
		err := p.cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok { //nolint:errorlint // exec returns it unwrapped
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Stop sends SIGTERM and waits up to a minute for the process to exit; it
// returns the exit code (-1 if it had to be killed).
func (p *Proc) Stop() int {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.code
	case <-time.After(time.Minute):
		p.Kill()
		return -1
	}
}

// Wait waits up to within for the process to exit on its own and
// returns its exit code, failing t if it does not.
func (p *Proc) Wait(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(within):
		p.Kill()
		t.Fatalf("the process did not exit within %v", within)
		return -1
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig to the process: SIGSTOP freezes it, SIGCONT lets it
// go on.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// PeakRSS samples the process' resident memory every 50ms until it exits
// and returns the largest sample, in bytes.
func (p *Proc) PeakRSS() int64 {
	var peak int64
	for !p.Exited() {
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
		if err == nil {
			for _, line := range strings.Split(string(raw), "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
					if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb*1024 > peak {
						peak = kb * 1024
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return peak
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output returns what the process printed so far.
func (p *Proc) Output() (stdout, stderr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String(), p.stderr.String()
}
