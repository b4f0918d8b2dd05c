package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Serve serves, on addr until ctx ends: /metrics with the given
// collectors, labeled pipeline=<name> (and Go and process metrics);
// /healthz, 200 while the process runs; /readyz, 200 while ready returns
// nil (nil: always), else 503 with the reason. It returns once it
// listens; a failure to listen names the address and the flag.
func Serve(ctx context.Context, addr, pipeline string, log *slog.Logger, ready func() error, cs ...prometheus.Collector) error {
	reg := prometheus.NewRegistry()
	// Every cutover metric carries its pipeline's name, so one dashboard
	// can show several pipelines without relabeling.
	prometheus.WrapRegistererWith(prometheus.Labels{"pipeline": pipeline}, reg).MustRegister(cs...)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr %s: %w (choose a free port)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	log.Info("serving metrics and health checks", "addr", ln.Addr().String(), "paths", "/metrics /healthz /readyz")
	return nil
}
