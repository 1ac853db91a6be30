package prommetrics_test

import (
	"context"
	"fmt"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/chronoq/chronoq/worker/prommetrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// A worker whose attempts reach a Prometheus registry. Serve reg with
// promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr()}) // your Redis
	defer rdb.Close()
	c := queue.NewClient(rdb, queue.Config{Namespace: "example-prommetrics", Logger: quiet})
	defer c.Close()

	reg := prometheus.NewRegistry()
	obs, err := prommetrics.New(reg)
	if err != nil {
		panic(err)
	}
	w, err := worker.New(c, worker.Config{Concurrency: 4, Logger: quiet, Observer: obs})
	if err != nil {
		panic(err)
	}
	w.HandleFunc("example.ping", func(ctx context.Context, j *job.Job) (any, error) { return nil, nil })
	if err := w.Start(ctx); err != nil {
		panic(err)
	}
	h, err := c.EnqueueByName(ctx, "example.ping", nil)
	if err != nil {
		panic(err)
	}
	if _, err := h.Wait(ctx); err != nil {
		panic(err)
	}
	_ = w.Stop(context.Background()) // reports what was acknowledged last

	families, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			fmt.Println(f.GetName(), m.GetCounter().GetValue()+float64(m.GetHistogram().GetSampleCount()))
		}
	}
	// Output:
	// chronoq_enqueue_to_start_seconds 1
	// chronoq_job_duration_seconds 1
	// chronoq_job_outcomes_total 1
	// chronoq_worker_slots 0
}
