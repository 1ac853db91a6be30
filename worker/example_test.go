package worker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

type GreetArgs struct {
	Name string `json:"name"`
}

var Greet = job.NewTask[GreetArgs]("example.greet")

// A producer and a worker sharing one typed task; Wait blocks for the result.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr()}) // your Redis
	defer rdb.Close()
	c := queue.NewClient(rdb, queue.Config{Namespace: "example-worker", Logger: quiet})
	defer c.Close()

	w, err := worker.New(c, worker.Config{Concurrency: 4, Logger: quiet})
	if err != nil {
		panic(err)
	}
	worker.HandleResult(w, Greet, func(ctx context.Context, a GreetArgs) (string, error) {
		return "hello, " + a.Name, nil
	})
	if err := w.Start(ctx); err != nil {
		panic(err)
	}
	defer w.Stop(context.Background())

	h, err := queue.Enqueue(ctx, c, Greet, GreetArgs{Name: "Ada"})
	if err != nil {
		panic(err)
	}
	greeting, err := queue.WaitResult[string](ctx, h)
	fmt.Println(greeting, err)
	// Output: hello, Ada <nil>
}

// Middleware wraps every handler, here to log each job's task.
func ExampleWorker_Use() {
	w, _ := worker.New(queue.NewClient(redis.NewClient(&redis.Options{Addr: redistest.Addr()}), queue.Config{}), worker.Config{Logger: quiet})
	w.Use(func(next worker.Handler) worker.Handler {
		return func(ctx context.Context, j *job.Job) (any, error) {
			fmt.Println("running", j.Task)
			return next(ctx, j)
		}
	})
	fmt.Println("middleware installed")
	// Output: middleware installed
}

// Stopping a running job (asynq's CancelProcessing, Celery's revoke(terminate=True)):
// its handler's context is canceled, with cause job.ErrCanceled, and the job ends
// canceled, never retried.
func ExampleWorker_stopRunningJob() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr()}) // your Redis
	defer rdb.Close()
	c := queue.NewClient(rdb, queue.Config{Namespace: "example-stop", Logger: quiet})
	defer c.Close()

	w, err := worker.New(c, worker.Config{Logger: quiet})
	if err != nil {
		panic(err)
	}
	started, cause := make(chan struct{}), make(chan error, 1)
	w.HandleFunc("reports.build", func(ctx context.Context, j *job.Job) (any, error) {
		close(started)
		<-ctx.Done() // a long task checks its context between steps
		cause <- context.Cause(ctx)
		return nil, ctx.Err()
	})
	if err := w.Start(ctx); err != nil {
		panic(err)
	}
	defer w.Stop(context.Background())

	h, err := c.EnqueueByName(ctx, "reports.build", nil)
	if err != nil {
		panic(err)
	}
	<-started
	running, err := c.StopJob(ctx, h.Queue, h.ID)
	fmt.Println("running:", running, err)
	_, err = h.Wait(ctx)
	fmt.Println("handler:", <-cause)
	fmt.Println("wait:", errors.Is(err, job.ErrCanceled))
	j, _ := h.Job(ctx)
	fmt.Println("state:", j.State)
	// Output:
	// running: true <nil>
	// handler: chronoq: job canceled: asked to stop
	// wait: true
	// state: canceled
}

// A worker whose job slots vary between 2 and 16 (Celery's --autoscale=16,2). It starts
// at Min; once a second it adds a slot while work waits and its jobs' run times hold,
// and cuts a quarter when they slow down, fail more, or sit idle (docs/limits.md).
func ExampleAutoscale() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr()}) // your Redis
	defer rdb.Close()
	c := queue.NewClient(rdb, queue.Config{Namespace: "example-autoscale", Logger: quiet})
	defer c.Close()

	w, err := worker.New(c, worker.Config{Autoscale: worker.Autoscale{Min: 2, Max: 16}, Logger: quiet})
	if err != nil {
		panic(err)
	}
	worker.HandleResult(w, Greet, func(ctx context.Context, a GreetArgs) (string, error) {
		return "hello, " + a.Name, nil
	})
	if err := w.Start(ctx); err != nil {
		panic(err)
	}
	defer w.Stop(context.Background())
	fmt.Println("slots:", w.Slots())

	h, err := queue.Enqueue(ctx, c, Greet, GreetArgs{Name: "Grace"})
	if err != nil {
		panic(err)
	}
	greeting, err := queue.WaitResult[string](ctx, h)
	fmt.Println(greeting, err)

	_, err = worker.New(c, worker.Config{Autoscale: worker.Autoscale{Min: 8, Max: 4}})
	fmt.Println(err)
	// Output:
	// slots: 2
	// hello, Grace <nil>
	// worker: Autoscale.Min 8 > Autoscale.Max 4
}
