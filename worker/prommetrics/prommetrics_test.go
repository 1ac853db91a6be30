package prommetrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/chronoq/chronoq/worker/prommetrics"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type addArgs struct {
	A int `json:"a"`
}

var add = job.NewTask[addArgs]("math.add")

// TestSharedRegistry: two workers of one process share a registry; every attempt is
// counted once, by outcome, with its run time and its wait.
func TestSharedRegistry(t *testing.T) {
	testutil.CheckLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c := queue.NewClient(redistest.Client(t), queue.Config{Logger: quiet})
	t.Cleanup(func() { _ = c.Close() })
	reg := prometheus.NewRegistry()
	var ws []*worker.Worker
	for range 2 {
		obs, err := prommetrics.New(reg)
		if err != nil {
			t.Fatal(err)
		}
		w, err := worker.New(c, worker.Config{Queues: []worker.QueueConfig{{Name: "default"}}, Concurrency: 2, Logger: quiet, Observer: obs})
		if err != nil {
			t.Fatal(err)
		}
		worker.Handle(w, add, func(ctx context.Context, a addArgs) error { return nil })
		w.HandleFunc("broken", func(ctx context.Context, j *job.Job) (any, error) {
			return nil, job.SkipRetry(errors.New("broken"))
		})
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Stop(context.Background()) })
		ws = append(ws, w)
	}
	var hs []*queue.Handle
	for i := range 20 {
		h, err := queue.Enqueue(ctx, c, add, addArgs{A: i})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	for range 3 {
		h, err := c.EnqueueByName(ctx, "broken", nil)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	for _, h := range hs {
		_, _ = h.Wait(ctx)
	}
	for _, w := range ws { // Stop reports what was acknowledged last
		if err := w.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got := gather(t, reg)
	for key, want := range map[string]float64{
		"chronoq_job_outcomes_total succeeded math.add": 20,
		"chronoq_job_outcomes_total failed broken":      3,
		"chronoq_job_duration_seconds math.add":         20,
		"chronoq_job_duration_seconds broken":           3,
		"chronoq_enqueue_to_start_seconds math.add":     20,
		"chronoq_enqueue_to_start_seconds broken":       3,
		"chronoq_worker_slots":                          0, // both stopped
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v (all: %v)", key, got[key], want, got)
		}
	}
	if len(got) != 7 {
		t.Errorf("series %v, want the 7 above", got)
	}
}

// gather sums reg's counters, gauges and histogram counts by metric name, outcome and
// task.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
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
			got[key] += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return got
}

// TestObserve: what each field of an attempt feeds. An attempt whose handler did not
// return has no run time, one whose wait is unknown no wait.
func TestObserve(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := prommetrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	obs.Observe(worker.Attempt{Queue: "q", Task: "a", Ran: time.Second, Wait: time.Millisecond, WaitKnown: true, Outcome: worker.OutcomeRetried})
	obs.Observe(worker.Attempt{Queue: "q", Task: "a", Outcome: worker.OutcomeCanceled})
	got := gather(t, reg)
	want := map[string]float64{
		"chronoq_job_outcomes_total retried a":  1,
		"chronoq_job_outcomes_total canceled a": 1,
		"chronoq_job_duration_seconds a":        1,
		"chronoq_enqueue_to_start_seconds a":    1,
		"chronoq_worker_slots":                  0,
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for key, n := range want {
		if got[key] != n {
			t.Errorf("%s = %v, want %v (all: %v)", key, got[key], n, got)
		}
	}
	var none *prommetrics.Observer
	none.Observe(worker.Attempt{Outcome: worker.OutcomeSucceeded}) // records nothing, does not panic
}

// TestNewRefuses: a nil registerer, and a registry holding another collector under one
// of the names.
func TestNewRefuses(t *testing.T) {
	if _, err := prommetrics.New(nil); err == nil {
		t.Error("New(nil) gave no error")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "chronoq_job_outcomes_total", Help: "not ours"}))
	if _, err := prommetrics.New(reg); err == nil {
		t.Error("New gave no error beside a different collector of the same name")
	}
	// the clash was on the third collector: the two before it are taken back, so a
	// collector of the first one's name registers anew
	again := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "chronoq_job_duration_seconds", Help: "Run time of job attempts, by queue and task."}, []string{"queue", "task"})
	if err := reg.Register(again); err != nil {
		t.Errorf("a failed New left its first collector registered: %v", err)
	}
	if _, err := prommetrics.New(prometheus.NewRegistry()); err != nil {
		t.Errorf("New on a fresh registry: %v", err)
	}
}

// TestSlotsGauge: chronoq_worker_slots is the sum of the slots of the workers sharing
// the registry, autoscaled or not, each taken out as it stops.
func TestSlotsGauge(t *testing.T) {
	testutil.CheckLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c := queue.NewClient(redistest.Client(t), queue.Config{Logger: quiet})
	t.Cleanup(func() { _ = c.Close() })
	reg := prometheus.NewRegistry()
	var ws []*worker.Worker
	for _, cfg := range []worker.Config{{Concurrency: 2}, {Autoscale: worker.Autoscale{Min: 3, Max: 6}}} {
		obs, err := prommetrics.New(reg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Logger, cfg.Observer = quiet, obs
		w, err := worker.New(c, cfg)
		if err != nil {
			t.Fatal(err)
		}
		worker.Handle(w, add, func(ctx context.Context, a addArgs) error { return nil })
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Stop(context.Background()) })
		ws = append(ws, w)
	}
	slots := func() float64 { return gather(t, reg)["chronoq_worker_slots"] }
	if n := slots(); n != 5 {
		t.Fatalf("slots %v with a worker of 2 and one autoscaled from 3, want 5", n)
	}
	if err := ws[0].Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := slots(); n != 3 {
		t.Fatalf("slots %v once the worker of 2 stopped, want 3", n)
	}
	if err := ws[1].Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := slots(); n != 0 {
		t.Fatalf("slots %v once both stopped, want 0", n)
	}
	var none *prommetrics.Observer
	none.ObserveSlots("w", 4) // records nothing, does not panic
}
