package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
)

func TestMain(m *testing.M) { redistest.Main(m) }

type addArgs struct {
	A int `json:"a"`
	B int `json:"b"`
}

var add = job.NewTask[addArgs]("math.add")

func TestEndToEndResult(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := queue.NewClient(redistest.Client(t), queue.Config{})
	defer c.Close()
	w, err := worker.New(c, worker.Config{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	worker.HandleResult(w, add, func(ctx context.Context, a addArgs) (int, error) { return a.A + a.B, nil })
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	h, err := queue.Enqueue(ctx, c, add, addArgs{2, 3})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := queue.WaitResult[int](ctx, h)
	if err != nil || sum != 5 {
		t.Fatalf("sum=%d err=%v", sum, err)
	}
	h2, err := c.EnqueueJSON(ctx, "math.add", []byte(`{"a": 40, "b": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := queue.WaitResult[int](ctx, h2); err != nil || sum != 42 {
		t.Fatalf("by name: sum=%d err=%v", sum, err)
	}
}
