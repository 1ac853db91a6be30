package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
)

// TestDeclaredOptionsApplyByName: a worker stores its typed tasks' options, so a job
// enqueued by name from a service that does not import the task gets them, as a typed
// enqueue would; the call's own options still win.
func TestDeclaredOptionsApplyByName(t *testing.T) {
	e := newEnv(t, queue.Config{})
	report := job.NewTask[struct {
		Month string `json:"month"`
	}]("reports.build", job.Queue("reports"), job.MaxRetries(5), job.Timeout(2*time.Minute), job.Priority(7))
	start(t, e, worker.Config{Queues: []worker.QueueConfig{{Name: "reports"}}}, func(w *worker.Worker) {
		worker.Handle(w, report, func(ctx context.Context, a struct {
			Month string `json:"month"`
		}) error {
			return nil
		})
	})
	other := queue.NewClient(e.rdb, queue.Config{Logger: quiet}) // another service
	defer other.Close()
	cases := []struct {
		name  string
		opts  []job.Option
		queue string
		retry int
		prio  int
	}{
		{"declared", nil, "reports", 5, 7},
		{"the call wins", []job.Option{job.Queue("elsewhere"), job.MaxRetries(1)}, "elsewhere", 1, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := other.EnqueueJSON(e.ctx, "reports.build", []byte(`{"month":"2026-11"}`), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if h.Queue != tc.queue {
				t.Fatalf("queue %q, want %q", h.Queue, tc.queue)
			}
			j, err := h.Job(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if j.Options.MaxRetries != tc.retry || j.Options.Priority != tc.prio || j.Options.Timeout != 2*time.Minute {
				t.Fatalf("options %+v", j.Options)
			}
		})
	}
	// a task no worker declared keeps the global defaults
	h, err := other.EnqueueByName(e.ctx, "unknown.task", nil)
	if err != nil || h.Queue != job.DefaultQueue {
		t.Fatalf("undeclared task: %v %+v", err, h)
	}
}
