package worker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
)

// recorder is an Observer that keeps every attempt it is told of.
type recorder struct {
	mu       sync.Mutex
	attempts []worker.Attempt
}

func (r *recorder) Observe(a worker.Attempt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, a)
}

// outcomes counts the attempts by task and outcome.
func (r *recorder) outcomes() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := map[string]int{}
	for _, a := range r.attempts {
		n[a.Task+" "+string(a.Outcome)]++
	}
	return n
}

func (r *recorder) all() []worker.Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]worker.Attempt(nil), r.attempts...)
}

// TestObserverOutcomes: an Observer of the program's own hears of a succeeded, a
// retried, a failed and a canceled attempt, each once, with its queue, task, run time
// and wait.
func TestObserverOutcomes(t *testing.T) {
	e := newEnv(t, queue.Config{})
	rec := &recorder{}
	started := make(chan struct{}, 1)
	var once sync.Once
	start(t, e, worker.Config{Concurrency: 2, Observer: rec}, func(w *worker.Worker) {
		worker.Handle(w, noop, func(ctx context.Context, _ struct{}) error { return nil })
		w.HandleFunc("flaky", func(ctx context.Context, j *job.Job) (any, error) {
			if j.Attempt == 1 {
				return nil, job.RetryAfter(time.Millisecond, errors.New("once"))
			}
			return nil, nil
		})
		w.HandleFunc("broken", func(ctx context.Context, j *job.Job) (any, error) {
			return nil, job.SkipRetry(errors.New("broken"))
		})
		w.HandleFunc("long", func(ctx context.Context, j *job.Job) (any, error) {
			once.Do(func() { started <- struct{}{} })
			<-ctx.Done()
			return nil, ctx.Err()
		})
	})
	var hs []*queue.Handle
	for _, task := range []string{"noop", "flaky", "broken"} {
		h, err := e.c.EnqueueByName(e.ctx, task, nil)
		must(t, err)
		hs = append(hs, h)
	}
	long, err := e.c.EnqueueByName(e.ctx, "long", nil)
	must(t, err)
	<-started
	running, err := e.c.StopJob(e.ctx, "default", long.ID)
	must(t, err)
	if !running {
		t.Fatal("StopJob did not see the long job running")
	}
	for i, h := range append(hs, long) {
		_, err := h.Wait(e.ctx)
		if wantErr := i >= 2; (err != nil) != wantErr {
			t.Fatalf("job %d (%s): wait gave %v", i, h.ID, err)
		}
	}
	// attempts are reported once Redis has recorded them, just after the waiters hear
	want := map[string]int{"noop succeeded": 1, "flaky retried": 1, "flaky succeeded": 1, "broken failed": 1, "long canceled": 1}
	testutil.Eventually(t, 5*time.Second, "five attempts observed", func() bool { return len(rec.all()) >= 5 })
	got := rec.outcomes()
	if len(got) != len(want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	for _, a := range rec.all() {
		if a.Queue != "default" || a.Ran <= 0 || !a.WaitKnown || a.Wait < 0 {
			t.Errorf("attempt %+v: want queue default, a run time and a known wait", a)
		}
	}
}

// TestObserverSharedAndActivity: two workers of one process share an observer; every
// outcome reaches it once, and the queue's activity ring counts the same, Stop
// flushing what was tallied last.
func TestObserverSharedAndActivity(t *testing.T) {
	e := newEnv(t, queue.Config{})
	rec := &recorder{}
	register := func(w *worker.Worker) {
		worker.Handle(w, add, func(ctx context.Context, a addArgs) error { return nil })
		w.HandleFunc("broken", func(ctx context.Context, j *job.Job) (any, error) {
			return nil, job.SkipRetry(errors.New("broken"))
		})
	}
	cfg := worker.Config{Queues: []worker.QueueConfig{{Name: "default"}}, Concurrency: 2, Observer: rec}
	w1 := start(t, e, cfg, register)
	w2 := start(t, e, cfg, register)
	var hs []*queue.Handle
	for i := range 20 {
		h, err := queue.Enqueue(e.ctx, e.c, add, addArgs{A: i})
		must(t, err)
		hs = append(hs, h)
	}
	for range 3 {
		h, err := e.c.EnqueueByName(e.ctx, "broken", nil)
		must(t, err)
		hs = append(hs, h)
	}
	for _, h := range hs {
		_, _ = h.Wait(e.ctx)
	}
	for _, w := range []*worker.Worker{w1, w2} {
		must(t, w.Stop(context.Background()))
	}
	if got := rec.outcomes(); len(got) != 2 || got["math.add succeeded"] != 20 || got["broken failed"] != 3 {
		t.Errorf("outcomes %v, want 20 math.add succeeded and 3 broken failed", got)
	}
	mins, err := e.c.Activity(e.ctx, "default", 2)
	must(t, err)
	sum := queue.Summarize(mins, time.Now())
	if sum.Succeeded != 20 || sum.Failed != 3 || sum.Retried != 0 {
		t.Fatalf("activity after Stop: %+v", sum)
	}
}
