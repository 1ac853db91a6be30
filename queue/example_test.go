package queue_test

import (
	"context"
	"fmt"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/redis/go-redis/v9"
)

// Enqueue by task name (Celery's send_task), delayed, with a priority, and inspect
// the queue: pending jobs are listed in the order workers will take them.
func ExampleClient_EnqueueJSON() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr()}) // your Redis
	defer rdb.Close()
	c := queue.NewClient(rdb, queue.Config{Namespace: "example-queue"})
	defer c.Close()

	if _, err := c.EnqueueJSON(ctx, "emails.send", []byte(`{"to":"ada@example.com"}`), job.Queue("mail")); err != nil {
		panic(err)
	}
	if _, err := c.EnqueueJSON(ctx, "emails.send", []byte(`{"to":"vip@example.com"}`), job.Queue("mail"), job.Priority(9)); err != nil {
		panic(err)
	}
	if _, err := c.EnqueueByName(ctx, "emails.digest", nil, job.Queue("mail"), job.In(time.Hour)); err != nil {
		panic(err)
	}
	_, err := c.EnqueueByName(ctx, "emails.send", nil, job.Priority(12))
	fmt.Println(err)

	counts, _ := c.Counts(ctx, "mail")
	fmt.Println("pending", counts.Pending, "scheduled", counts.Scheduled)
	pending, _ := c.List(ctx, "mail", job.StatePending, 0, 10)
	for _, j := range pending {
		var args map[string]string
		_ = j.Decode(&args)
		fmt.Println(j.Options.Priority, j.Task, args["to"])
	}
	_, _ = c.Purge(ctx, "mail", job.StatePending, nil)
	_, _ = c.Purge(ctx, "mail", job.StateScheduled, nil)
	// Output:
	// chronoq: invalid option Priority=12: must be between 0 and 9 (9 runs first)
	// pending 2 scheduled 1
	// 9 emails.send vip@example.com
	// 5 emails.send ada@example.com
}
