package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsSharedRegistryAndActivity: two workers of one process share a registry;
// every outcome is counted once, in Prometheus and in the queue's activity ring, and
// Stop flushes what was tallied last.
func TestMetricsSharedRegistryAndActivity(t *testing.T) {
	e := newEnv(t, queue.Config{})
	reg := prometheus.NewRegistry()
	register := func(w *worker.Worker) {
		worker.Handle(w, add, func(ctx context.Context, a addArgs) error { return nil })
		w.HandleFunc("broken", func(ctx context.Context, j *job.Job) (any, error) {
			return nil, job.SkipRetry(errors.New("broken"))
		})
	}
	cfg := worker.Config{Queues: []worker.QueueConfig{{Name: "default"}}, Concurrency: 2, Metrics: reg}
	w1 := start(t, e, cfg, register)
	w2 := start(t, e, cfg, register)
	var hs []*queue.Handle
	for i := range 20 {
		h, err := queue.Enqueue(e.ctx, e.c, add, addArgs{A: i})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	for range 3 {
		h, err := e.c.EnqueueByName(e.ctx, "broken", nil)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	for _, h := range hs {
		_, _ = h.Wait(e.ctx)
	}
	for _, w := range []*worker.Worker{w1, w2} {
		if err := w.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" || l.GetName() == "task" {
					key += " " + l.GetValue()
				}
			}
			got[key] += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	for key, want := range map[string]float64{
		"chronoq_job_outcomes_total succeeded math.add": 20,
		"chronoq_job_outcomes_total failed broken":      3,
		"chronoq_job_duration_seconds math.add":         20,
		"chronoq_enqueue_to_start_seconds broken":       3,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v (all: %v)", key, got[key], want, got)
		}
	}
	mins, err := e.c.Activity(e.ctx, "default", 2)
	if err != nil {
		t.Fatal(err)
	}
	sum := queue.Summarize(mins, time.Now())
	if sum.Succeeded != 20 || sum.Failed != 3 || sum.Retried != 0 {
		t.Fatalf("activity after Stop: %+v", sum)
	}
}
