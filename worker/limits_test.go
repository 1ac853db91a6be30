package worker_test

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
)

// A SIGKILLed worker holding the only slot of a capped task: the reaper takes the lease
// back and frees the slot once; both jobs then run, never two at a time.
func TestKilledWorkerFreesCappedSlot(t *testing.T) {
	e := newEnv(t, queue.Config{})
	must(t, e.c.SetLimit(e.ctx, "default", job.Limit{Scope: job.ScopeTask, Task: "victim", MaxRunning: 1}))
	first, err := e.c.EnqueueByName(e.ctx, "victim", nil, job.MaxRetries(2))
	must(t, err)
	child := startVictim(t, e, first.ID)
	second, err := e.c.EnqueueByName(e.ctx, "victim", nil)
	must(t, err)
	must(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
	var running, most atomic.Int32
	start(t, e, worker.Config{Lease: 500 * time.Millisecond, Concurrency: 4}, func(w *worker.Worker) {
		w.HandleFunc("victim", func(ctx context.Context, j *job.Job) (any, error) {
			n := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(20 * time.Millisecond) // overlap, were the cap not kept
			return nil, nil
		})
	})
	waitState(t, e, first, job.StateSucceeded)
	waitState(t, e, second, job.StateSucceeded)
	if most.Load() != 1 {
		t.Fatalf("%d jobs of a task capped at 1 ran at once", most.Load())
	}
	uses, err := e.c.Limits(e.ctx, "default")
	must(t, err)
	if len(uses) != 1 || uses[0].Running != 0 {
		t.Fatalf("after both ended the limit shows %+v", uses)
	}
}

// A worker held back by a rate sleeps until the next token and goes on: ten jobs at
// 50/s end well before ten idle waits would.
func TestRateLimitedWorkerWakesForTokens(t *testing.T) {
	e := newEnv(t, queue.Config{})
	limited := job.NewTask[int]("limited", job.RateLimit("50/s:1"))
	var hs []*queue.Handle
	for i := range 10 {
		h, err := queue.Enqueue(e.ctx, e.c, limited, i)
		must(t, err)
		hs = append(hs, h)
	}
	start(t, e, worker.Config{IdleBlock: 20 * time.Second}, func(w *worker.Worker) {
		worker.Handle(w, limited, func(ctx context.Context, i int) error { return nil })
	})
	for _, h := range hs {
		waitState(t, e, h, job.StateSucceeded)
	}
	uses, err := e.c.Limits(e.ctx, "default")
	must(t, err)
	if len(uses) != 1 || !uses[0].Declared || uses[0].Rate.String() != "50/s:1" {
		t.Fatalf("the task's declared limit reads %+v", uses)
	}
}

// An operator's limit wins over a task's declaration; cleared, the next worker's
// declaration holds again.
func TestDeclaredLimitYieldsToOperator(t *testing.T) {
	e := newEnv(t, queue.Config{})
	capped := job.NewTask[int]("capped", job.MaxRunning(2))
	register := func(w *worker.Worker) {
		worker.Handle(w, capped, func(ctx context.Context, i int) error { return nil })
	}
	limitOf := func() job.LimitUse {
		t.Helper()
		uses, err := e.c.Limits(e.ctx, "default")
		must(t, err)
		if len(uses) != 1 {
			t.Fatalf("limits %+v", uses)
		}
		return uses[0]
	}
	w := start(t, e, worker.Config{}, register)
	if l := limitOf(); l.MaxRunning != 2 || !l.Declared {
		t.Fatalf("declared %+v", l)
	}
	must(t, w.Stop(e.ctx))
	must(t, e.c.SetLimit(e.ctx, "default", job.Limit{Scope: job.ScopeTask, Task: "capped", MaxRunning: 5}))
	w = start(t, e, worker.Config{}, register)
	if l := limitOf(); l.MaxRunning != 5 || l.Declared {
		t.Fatalf("after an operator's setting and a restart: %+v", l)
	}
	must(t, w.Stop(e.ctx))
	must(t, e.c.SetLimit(e.ctx, "default", job.Limit{Scope: job.ScopeTask, Task: "capped"}))
	start(t, e, worker.Config{}, register)
	if l := limitOf(); l.MaxRunning != 2 || !l.Declared {
		t.Fatalf("cleared, then declared again: %+v", l)
	}
}
