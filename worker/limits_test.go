package worker_test

import (
	"context"
	"errors"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
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

// waitIdleMark waits until a worker has marked itself idle on queue (it found nothing
// and is about to block).
func waitIdleMark(t *testing.T, e *env, q string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "the worker waits, idle", func() bool {
		n, _ := e.rdb.ZCard(e.ctx, "chronoq:{"+q+"}:idle").Result()
		return n > 0
	})
}

// A queue with limits hands nothing off, so its enqueues must wake an idle worker
// themselves: into an empty queue, and beside work held back by a limit (the index is
// not empty then, yet every worker may wait). IdleBlock is longer than the wait for
// the job: a missing wake-up fails the test.
func TestLimitedQueueWakesIdleWorkers(t *testing.T) {
	e := newEnv(t, queue.Config{})
	must(t, e.c.SetLimit(e.ctx, "default", job.Limit{Scope: job.ScopeTask, Task: "c", MaxRunning: 1}))
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	start(t, e, worker.Config{IdleBlock: 20 * time.Second, Concurrency: 4}, func(w *worker.Worker) {
		w.HandleFunc("c", func(ctx context.Context, j *job.Job) (any, error) {
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		})
		w.HandleFunc("d", func(ctx context.Context, j *job.Job) (any, error) { return nil, nil })
	})
	defer close(release)
	waitIdleMark(t, e, "default")
	h, err := e.c.EnqueueByName(e.ctx, "d", nil) // into the empty queue
	must(t, err)
	waitState(t, e, h, job.StateSucceeded)
	for range 2 {
		_, err := e.c.EnqueueByName(e.ctx, "c", nil)
		must(t, err)
	}
	<-started // the second c is held back by its cap
	must(t, e.rdb.Del(e.ctx, "chronoq:{default}:idle").Err())
	waitIdleMark(t, e, "default")
	h, err = e.c.EnqueueByName(e.ctx, "d", nil) // beside the held-back c
	must(t, err)
	waitState(t, e, h, job.StateSucceeded)
}

// A declaration that fails at Start (Redis unreachable for a moment) is tried again:
// the task's limit is stored and enforced without a restart.
func TestDeclaredLimitRetriedAfterFailure(t *testing.T) {
	e := newEnv(t, queue.Config{})
	hook := &failOnce{arg: "declare"}
	e.rdb.AddHook(hook)
	capped := job.NewTask[int]("capped-blip", job.MaxRunning(1))
	start(t, e, worker.Config{Lease: time.Second}, func(w *worker.Worker) {
		worker.Handle(w, capped, func(ctx context.Context, i int) error { return nil })
	})
	testutil.Eventually(t, 10*time.Second, "the declared limit stored", func() bool {
		uses, err := e.c.Limits(e.ctx, "default")
		return err == nil && len(uses) == 1 && uses[0].MaxRunning == 1
	})
	if !hook.done.Load() {
		t.Fatal("no declaration failed: the test tested nothing")
	}
}

// failOnce fails the first command that has arg among its arguments.
type failOnce struct {
	arg  string
	done atomic.Bool
}

func (h *failOnce) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failOnce) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		for _, a := range cmd.Args() {
			if s, ok := a.(string); ok && s == h.arg && h.done.CompareAndSwap(false, true) {
				err := errors.New("connection reset by peer (injected)")
				cmd.SetErr(err)
				return err
			}
		}
		return next(ctx, cmd)
	}
}
func (h *failOnce) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
