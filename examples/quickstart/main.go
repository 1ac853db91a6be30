// Command quickstart is the smallest chronoq program worth copying: it declares typed
// tasks, runs a worker for them, enqueues jobs from Go and waits for their results,
// schedules a delayed job, and lets a flaky job succeed through retries with backoff.
// It finishes in about a second.
//
//	go run ./examples/quickstart                                             # embedded Redis, nothing to install
//	CHRONOQ_REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/quickstart  # your Redis
//
// In a real system the producer and the worker are different processes that share the
// task declarations (one package both import); here they share one main for brevity.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/chronoq/chronoq/internal/devredis"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// GreetArgs are greet's arguments. The json tags are the wire names, so another
// language can enqueue {"name": "Ada"} by task name.
type GreetArgs struct {
	Name string `json:"name"`
}

// ChargeArgs are charge's arguments.
type ChargeArgs struct {
	Customer string `json:"customer"`
	Cents    int    `json:"cents"`
}

// The tasks: a wire name, an argument type and default options. The name, not the Go
// type, identifies a task, so renaming the Go variable never breaks queued jobs.
var (
	greet = job.NewTask[GreetArgs]("quickstart.greet")
	// charge talks to a flaky payment gateway: up to 3 retries, waiting 100ms, 200ms,
	// 400ms (less up to half at random, so a burst of failures does not retry in step)
	charge = job.NewTask[ChargeArgs]("quickstart.charge",
		job.MaxRetries(3), job.WithBackoff(job.ExponentialBackoff(100*time.Millisecond, time.Second)))
)

// delay is how long the delayed job waits before it may run.
const delay = time.Second

func main() {
	rdb, stop, err := devredis.Open()
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
	defer stop()
	if err := run(context.Background(), rdb, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, rdb *redis.Client, out io.Writer) error {
	// log.Logger serialises writes, so handlers on worker goroutines may print too
	say := log.New(out, "", 0)
	// the library's own logs (a warning per failed attempt) would repeat what we print
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// one Client per process: producers enqueue with it, the worker runs on it
	c := queue.NewClient(rdb, queue.Config{Logger: quiet})
	defer c.Close()

	// the worker: serves the "default" queue (where tasks go unless told otherwise)
	w, err := worker.New(c, worker.Config{Queues: []worker.QueueConfig{{Name: job.DefaultQueue}}, Concurrency: 4, Logger: quiet})
	if err != nil {
		return err
	}
	worker.HandleResult(w, greet, func(ctx context.Context, a GreetArgs) (string, error) {
		return "Hello, " + a.Name + "!", nil
	})
	worker.HandleResult(w, charge, func(ctx context.Context, a ChargeArgs) (string, error) {
		// the running job (its attempt, id, options) comes with the context
		attempt := job.FromContext(ctx).Attempt
		if attempt < 3 {
			say.Printf("  charge attempt %d: gateway timeout, will retry with backoff", attempt)
			return "", errors.New("payment gateway timeout")
		}
		return fmt.Sprintf("charged %s %d cents on attempt %d", a.Customer, a.Cents, attempt), nil
	})
	// Start returns at once; in a worker binary call w.Run(ctx), which also stops
	// gracefully on SIGINT/SIGTERM
	if err := w.Start(ctx); err != nil {
		return err
	}
	defer w.Stop(context.Background())

	// a delayed job: stored in Redis until due, in no process's memory
	later, err := queue.Enqueue(ctx, c, greet, GreetArgs{Name: "Grace"}, job.In(delay))
	if err != nil {
		return err
	}
	say.Printf("enqueued %s %s, due in %s", later.Task, later.ID, delay)

	h, err := queue.Enqueue(ctx, c, greet, GreetArgs{Name: "Ada"})
	if err != nil {
		return err
	}
	say.Printf("enqueued %s %s", h.Task, h.ID)
	// always wait with a deadline: a job may wait behind others, or for a worker
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hello, err := queue.WaitResult[string](wctx, h)
	if err != nil {
		return fmt.Errorf("greet: %w", err)
	}
	say.Printf("%s -> %q", h.Task, hello)

	ch, err := queue.Enqueue(ctx, c, charge, ChargeArgs{Customer: "ada", Cents: 4200})
	if err != nil {
		return err
	}
	say.Printf("enqueued %s %s (fails twice, then succeeds)", ch.Task, ch.ID)
	j, err := ch.Wait(wctx) // Wait gives the whole record: state, attempts, timings, result
	if err != nil {
		return fmt.Errorf("charge: %w", err)
	}
	var receipt string
	if err := j.DecodeResult(&receipt); err != nil {
		return err
	}
	say.Printf("%s -> %q after %d attempts, %s after enqueue", ch.Task, receipt, j.Attempt, j.FinishedAt.Sub(j.EnqueuedAt).Round(time.Millisecond))

	lj, err := later.Wait(wctx)
	if err != nil {
		return fmt.Errorf("delayed greet: %w", err)
	}
	var late string
	if err := lj.DecodeResult(&late); err != nil {
		return err
	}
	say.Printf("%s -> %q, started %s after enqueue (asked: %s)", later.Task, late, lj.StartedAt.Sub(lj.EnqueuedAt).Round(time.Millisecond), delay)
	return nil
}
