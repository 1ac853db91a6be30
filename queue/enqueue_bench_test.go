package queue_test

import (
	"context"
	"testing"

	"github.com/chronoq/chronoq/internal/redistest"
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
