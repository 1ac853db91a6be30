package cli

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker/prommetrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// workerRegistry is what a worker's own /metrics serves: the worker's histograms and
// outcome counters (fed by the returned observer, for worker.Config.Observer), the same
// Redis-wide gauges as the dashboard's /metrics, and the Go runtime's and process's
// collectors.
func workerRegistry(c *queue.Client) (*prometheus.Registry, *prommetrics.Observer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(dashboard.NewCollector(c), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	obs, err := prommetrics.New(reg)
	if err != nil {
		return nil, nil, err
	}
	return reg, obs, nil
}

// serveMetrics listens on addr (at once, so a taken port is an error here) and serves
// reg on /metrics until stop. Metrics carry no secrets and allow no action, so any
// address may be used: Prometheus scrapes from another host.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
