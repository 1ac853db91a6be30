package queue_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

// BenchmarkEnqueueParallel profiles the client side of single enqueues; rates are
// measured in bench/, not here.
func BenchmarkEnqueueParallel(b *testing.B) {
	c := queue.NewClient(redistest.Client(b), queue.Config{})
	ctx := context.Background()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.EnqueueByName(ctx, "noop", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkEnqueueTypedParallel16 is the bench's parallel16 enqueue: a typed task,
// 16 goroutines on one client (their calls share script runs).
func BenchmarkEnqueueTypedParallel16(b *testing.B) {
	c := queue.NewClient(redistest.Client(b), queue.Config{})
	task := job.NewTask[int64]("noop", job.Queue("bench"))
	ctx := context.Background()
	b.SetParallelism(16 / max(1, runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := queue.Enqueue(ctx, c, task, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}
