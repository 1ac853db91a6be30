package queue

import (
	"context"

	"github.com/chronoq/chronoq/job"
)

// SetLimit sets one of queue's fleet-wide limits (docs/limits.md): a task's, each fair
// key's, or the queue's own cap on running jobs and rate of starts. A Limit with
// neither a cap nor a rate clears it. It wins over the tasks' declarations
// (job.RateLimit, job.MaxRunning on NewTask) until cleared.
func (c *Client) SetLimit(ctx context.Context, queue string, l job.Limit) error {
	return c.store.SetLimit(ctx, queue, l)
}

// Limits lists queue's limits with their use now: jobs counted running against each
// cap, tokens in each rate's bucket, and, for a per-key limit, each key with jobs
// running.
func (c *Client) Limits(ctx context.Context, queue string) ([]job.LimitUse, error) {
	return c.store.Limits(ctx, queue)
}
