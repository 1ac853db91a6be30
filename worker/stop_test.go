package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
)

// TestStopRunningJob: StopJob reaches the func's context at once (or at the next lease
// renewal when the notice was missed); the job ends canceled, or succeeded when the
// func finished anyway, and a func that ignores its context loses its slot after the
// grace.
func TestStopRunningJob(t *testing.T) {
	e := newEnv(t, queue.Config{})
	started := make(chan string, 1)
	causes := make(chan error, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	rec := &recorder{}
	start(t, e, worker.Config{Concurrency: 1, Lease: 300 * time.Millisecond, HardDeadlineGrace: 100 * time.Millisecond, Observer: rec}, func(w *worker.Worker) {
		w.HandleFunc("honours", func(ctx context.Context, j *job.Job) (any, error) {
			started <- j.ID
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return nil, ctx.Err()
		})
		w.HandleFunc("finishes", func(ctx context.Context, j *job.Job) (any, error) {
			started <- j.ID
			<-ctx.Done()
			return "done anyway", nil
		})
		w.HandleFunc("ignores", func(ctx context.Context, j *job.Job) (any, error) {
			started <- j.ID
			<-release // never heeds ctx: the worker must free the slot anyway
			return nil, nil
		})
		worker.Handle(w, noop, func(ctx context.Context, _ struct{}) error { return nil })
	})
	stops := clientstore.Of(e.c).Keys("default").Stops
	cases := []struct {
		task        string
		missNotice  bool // the request is only in Redis: renewal must find it
		wantSuccess bool
	}{
		{task: "honours"},
		{task: "honours", missNotice: true},
		{task: "finishes", wantSuccess: true},
		{task: "ignores"},
	}
	for _, tc := range cases {
		h, err := e.c.EnqueueByName(e.ctx, tc.task, nil, job.MaxRetries(3))
		must(t, err)
		if id := <-started; id != h.ID {
			t.Fatalf("%s: started %s, want %s", tc.task, id, h.ID)
		}
		// wait from a client of its own, subscribed before the stop: a canceled job is
		// gone, so a wait begun after it ended would find nothing
		waiter := queue.NewClient(e.rdb, queue.Config{Logger: quiet})
		channel := clientstore.Of(e.c).Keys("default").DoneChannel
		before := numSub(t, e, channel)
		waited := make(chan error, 1)
		go func() { _, err := waiter.Handle("default", h.ID).Wait(e.ctx); waited <- err }()
		testutil.Eventually(t, 5*time.Second, "waiter subscribed", func() bool { return numSub(t, e, channel) > before })
		if tc.missNotice {
			must(t, e.rdb.HSet(e.ctx, stops, h.ID, 1).Err())
		} else {
			running, err := e.c.StopJob(e.ctx, "default", h.ID)
			must(t, err)
			if !running {
				t.Fatalf("%s: StopJob did not see it running", tc.task)
			}
		}
		err = <-waited
		_ = waiter.Close()
		switch {
		case tc.wantSuccess:
			must(t, err)
			if out, err := queue.WaitResult[string](e.ctx, h); err != nil || out != "done anyway" {
				t.Fatalf("%s: result %q %v", tc.task, out, err)
			}
		case !errors.Is(err, job.ErrCanceled):
			t.Fatalf("%s: wait gave %v, want canceled", tc.task, err)
		}
		if tc.task == "honours" {
			if cause := <-causes; !errors.Is(cause, job.ErrCanceled) {
				t.Fatalf("context cause %v, want job.ErrCanceled", cause)
			}
		}
		if tc.wantSuccess { // the ack leaves a late stop request to the trim
			_, err := clientstore.Of(e.c).Trim(e.ctx, "default")
			must(t, err)
		} else if j, err := h.Job(e.ctx); err != nil || j.State != job.StateCanceled {
			t.Fatalf("%s: %+v %v, want it kept as canceled", tc.task, j, err)
		}
		if n, err := e.rdb.HLen(e.ctx, stops).Result(); err != nil || n != 0 {
			t.Fatalf("%s: %d stop requests left (%v)", tc.task, n, err)
		}
		if c, err := e.c.Counts(e.ctx, "default"); err != nil || c.Retried != 0 || c.Scheduled != 0 {
			t.Fatalf("%s: a stopped job was retried: %+v %v", tc.task, c, err)
		}
	}
	// never retried, and the one slot is free again
	h, err := queue.Enqueue(e.ctx, e.c, noop, struct{}{})
	must(t, err)
	_, err = h.Wait(e.ctx)
	must(t, err)
	c, err := e.c.Counts(e.ctx, "default")
	must(t, err)
	if c.Pending+c.Scheduled+c.Active+c.Failed != 0 || c.Retried != 0 {
		t.Fatalf("stopped jobs left something behind: %+v", c)
	}
	if n := rec.outcomes()["honours canceled"] + rec.outcomes()["ignores canceled"]; n != 3 {
		t.Fatalf("canceled outcomes %d, want 3 (all: %v)", n, rec.outcomes())
	}
}

func numSub(t *testing.T, e *env, channel string) int64 {
	t.Helper()
	m, err := e.rdb.PubSubNumSub(e.ctx, channel).Result()
	must(t, err)
	return m[channel]
}
