package worker_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
)

// slotsLog is an Observer that logs the slot counts it is told.
type slotsLog struct {
	mu  sync.Mutex
	log []int
}

func (s *slotsLog) Observe(worker.Attempt) {}

func (s *slotsLog) ObserveSlots(_ string, n int) {
	s.mu.Lock()
	s.log = append(s.log, n)
	s.mu.Unlock()
}

func (s *slotsLog) values() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// gated counts the handler's runs at once and holds each until the gate closes; it
// notes a start beyond the worker's slots.
type gated struct {
	gate     chan struct{}
	running  atomic.Int64
	over     atomic.Int64 // starts with more jobs running than the worker's slots
	canceled atomic.Int64 // runs whose context ended before the gate opened
}

func (g *gated) register(w *worker.Worker) {
	worker.Handle(w, noop, func(ctx context.Context, _ struct{}) error {
		defer g.running.Add(-1)
		if n := g.running.Add(1); n > int64(w.Slots()) {
			g.over.Add(1)
		}
		select {
		case <-g.gate:
		case <-ctx.Done():
			g.canceled.Add(1)
		}
		return nil
	})
}

// TestAutoscaleGrowsWhileWorkWaitsAndShrinksWhenIdle: from Min the worker adds one
// slot a round while a backlog waits, up to Max, each slot taken at once; once the
// work is done it cuts idle slots by a quarter every ten rounds, down to Min.
func TestAutoscaleGrowsWhileWorkWaitsAndShrinksWhenIdle(t *testing.T) {
	e := newEnv(t, queue.Config{})
	const n = 20
	for range n {
		_, err := queue.Enqueue(e.ctx, e.c, noop, struct{}{})
		must(t, err)
	}
	obs := &slotsLog{}
	g := &gated{gate: make(chan struct{})}
	w := start(t, e, worker.Config{Autoscale: worker.Autoscale{Min: 2, Max: 6}, Observer: obs, HeartbeatInterval: 50 * time.Millisecond},
		func(w *worker.Worker) {
			worker.SetScaleEvery(w, 10*time.Millisecond)
			g.register(w)
		})
	testutil.Eventually(t, 10*time.Second, "6 slots, all running", func() bool { return w.Slots() == 6 && g.running.Load() == 6 })
	if got := obs.values(); !slices.Equal(got, []int{2, 3, 4, 5, 6}) {
		t.Fatalf("slots went %v while the backlog waited, want one more a round: [2 3 4 5 6]", got)
	}
	testutil.Eventually(t, 10*time.Second, "the heartbeat with 6 slots", func() bool {
		ws, err := e.c.Workers(e.ctx)
		return err == nil && len(ws) == 1 && ws[0].Slots == 6 && ws[0].Concurrency == 6
	})

	close(g.gate)
	testutil.Eventually(t, 10*time.Second, "every job done", func() bool {
		c, err := e.c.Counts(e.ctx, job.DefaultQueue)
		return err == nil && c.Succeeded == n
	})
	testutil.Eventually(t, 10*time.Second, "back to 2 slots", func() bool { return w.Slots() == 2 })
	got := obs.values()
	for i := 5; i < len(got); i++ {
		prev := got[i-1]
		if got[i] >= prev || got[i] < prev-max(1, prev/4) || got[i] < 2 {
			t.Fatalf("slots went %v once idle: each step must cut at most a quarter (at least one), down to Min", got)
		}
	}
	if g.over.Load() > 0 {
		t.Fatalf("%d jobs started beyond the worker's slots", g.over.Load())
	}
	must(t, w.Stop(e.ctx))
	if got := obs.values(); got[len(got)-1] != 0 {
		t.Fatalf("slots after Stop: %v, want a last 0", got)
	}
}

// TestAutoscaleShrinkKeepsRunningJobs: cutting the slots below the running jobs
// cancels none of them; the worker starts no job until fewer run than its slots.
func TestAutoscaleShrinkKeepsRunningJobs(t *testing.T) {
	e := newEnv(t, queue.Config{})
	g := &gated{gate: make(chan struct{})}
	last := make(chan struct{})
	w := start(t, e, worker.Config{Autoscale: worker.Autoscale{Min: 1, Max: 4}}, func(w *worker.Worker) {
		worker.SetScaleEvery(w, time.Hour) // the test sizes the worker itself
		g.register(w)
		w.HandleFunc("last", func(ctx context.Context, j *job.Job) (any, error) { close(last); return nil, nil })
	})
	worker.Resize(w, 4)
	var hs []*queue.Handle
	for range 4 {
		h, err := queue.Enqueue(e.ctx, e.c, noop, struct{}{})
		must(t, err)
		hs = append(hs, h)
	}
	testutil.Eventually(t, 10*time.Second, "4 jobs running", func() bool { return g.running.Load() == 4 })
	worker.Resize(w, 1)
	h5, err := e.c.EnqueueByName(e.ctx, "last", nil)
	must(t, err)
	if w.Slots() != 1 || g.canceled.Load() != 0 {
		t.Fatalf("after the cut: %d slots, %d runs canceled", w.Slots(), g.canceled.Load())
	}
	// three of the four end: one still runs, as many as the slots, so the last job
	// must wait for it
	for range 3 {
		g.gate <- struct{}{}
	}
	testutil.Eventually(t, 10*time.Second, "three jobs done", func() bool {
		c, err := e.c.Counts(e.ctx, job.DefaultQueue)
		return err == nil && c.Succeeded == 3
	})
	if st, err := h5.State(e.ctx); err != nil || st != job.StatePending {
		t.Fatalf("the job enqueued after the cut is %s (%v) while the one slot is busy, want pending", st, err)
	}
	close(g.gate)
	<-last
	for _, h := range append(hs, h5) {
		waitState(t, e, h, job.StateSucceeded)
	}
	if g.canceled.Load() != 0 {
		t.Fatalf("%d runs canceled by the cut", g.canceled.Load())
	}
}

// TestHeartbeatShowsSlots: a worker's heartbeat carries its slots, Concurrency
// without autoscaling, Min at the start with it (and Max as its concurrency).
func TestHeartbeatShowsSlots(t *testing.T) {
	e := newEnv(t, queue.Config{})
	start(t, e, worker.Config{ID: "fixed", Queues: []worker.QueueConfig{{Name: "a"}}, Concurrency: 3}, func(w *worker.Worker) {
		worker.Handle(w, noop, func(ctx context.Context, _ struct{}) error { return nil })
	})
	start(t, e, worker.Config{ID: "scaled", Queues: []worker.QueueConfig{{Name: "b"}}, Autoscale: worker.Autoscale{Min: 2, Max: 5}},
		func(w *worker.Worker) {
			worker.SetScaleEvery(w, time.Hour)
			worker.Handle(w, noop, func(ctx context.Context, _ struct{}) error { return nil })
		})
	var ws []queue.WorkerInfo
	testutil.Eventually(t, 10*time.Second, "both heartbeats", func() bool {
		var err error
		ws, err = e.c.Workers(e.ctx)
		return err == nil && len(ws) == 2
	})
	slices.SortFunc(ws, func(a, b queue.WorkerInfo) int { return len(a.ID) - len(b.ID) })
	if ws[0].ID != "fixed" || ws[0].Concurrency != 3 || ws[0].Slots != 3 {
		t.Errorf("fixed worker: concurrency %d, slots %d, want 3 and 3", ws[0].Concurrency, ws[0].Slots)
	}
	if ws[1].ID != "scaled" || ws[1].Concurrency != 5 || ws[1].Slots != 2 {
		t.Errorf("autoscaled worker: concurrency %d, slots %d, want 5 and 2", ws[1].Concurrency, ws[1].Slots)
	}
}
