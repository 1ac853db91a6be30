package worker_test

import (
	"context"
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
