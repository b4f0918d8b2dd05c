package profile

import (
	"fmt"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// Start starts the profiles asked for: a CPU profile of the whole
// run to cpuPath, and to heapPath a heap profile rewritten each time the
// heap is larger than it has been (looked at every 250 ms), so that what
// is left is the profile at the peak. The returned function stops them.
func Start(cpuPath, heapPath string) (func(), error) {
	var stops []func()
	stop := func() {
		for _, f := range stops {
			f()
		}
	}
	if cpuPath != "" {
		f, err := os.Create(cpuPath) //nolint:gosec // the operator names the file
		if err != nil {
			return nil, fmt.Errorf("--cpu-profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); _ = f.Close() })
	}
	if heapPath != "" {
		done := make(chan struct{})
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
			var peak uint64
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				metrics.Read(sample)
				if v := sample[0].Value.Uint64(); v > peak {
					peak = v
					if err := writeHeapProfile(heapPath); err != nil {
						fmt.Fprintf(os.Stderr, "--heap-profile: %v\n", err)
						return
					}
				}
			}
		}()
		stops = append(stops, func() { close(done); <-finished })
	}
	return stop, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path) //nolint:gosec // the operator names the file
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
