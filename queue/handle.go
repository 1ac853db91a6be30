package queue

import (
	"context"
	"errors"
	"fmt"

	"github.com/chronoq/chronoq/job"
)

// Handle follows one enqueued job.
type Handle struct {
	ID    string
	Queue string
	Task  string
	// Existing is true when a keyed enqueue kept the job already waiting under its key
	// (job.KeepExisting): ID is that job's.
	Existing bool
	c        *Client
}

// Handle returns a handle on a job known by queue and id (e.g. from a log line).
func (c *Client) Handle(queue, id string) *Handle { return &Handle{ID: id, Queue: queue, c: c} }

// Job reads the job's current record: state, attempts, error, result, timings.
func (h *Handle) Job(ctx context.Context) (*job.Job, error) {
	j, err := h.c.store.Job(ctx, h.Queue, h.ID)
	if err != nil {
		return nil, mapErr(err, h.ID)
	}
	return j, nil
}

// State reads the job's current state.
func (h *Handle) State(ctx context.Context) (job.State, error) {
	j, err := h.Job(ctx)
	if err != nil {
		return "", err
	}
	return j.State, nil
}

// Wait blocks until the job ends or ctx is done (use context.WithTimeout for Celery's
// result.get(timeout=...)). It returns the ended job; for a failed job the error is a
// *job.FailedError, for a canceled one job.ErrCanceled. It listens on the queue's
// pub/sub channel and reads the job once when told it ended: no polling.
//
// A job that is gone — it ended with Retention 0, or was replaced under its key,
// purged, deleted or trimmed before Wait looked — gives an error wrapping
// job.ErrNotFound, at once: there is no end left to wait for. If Wait saw it end (it
// was listening), a Retention 0 success returns a job with State succeeded and no
// result.
func (h *Handle) Wait(ctx context.Context) (*job.Job, error) {
	hub, err := h.c.waitHub(ctx)
	if err != nil {
		return nil, err
	}
	events, cancel, err := hub.watch(ctx, h.Queue, h.ID)
	if err != nil {
		return nil, err
	}
	defer cancel()
	for {
		// read after subscribing, so an end between the two is never missed
		j, err := h.Job(ctx)
		switch {
		case errors.Is(err, job.ErrNotFound):
			// gone. If it ended after we subscribed, its event is on its way: let the
			// hub dispatch everything sent so far, then look
			if err := hub.sync(ctx); err != nil {
				return nil, err
			}
			select {
			case ev := <-events:
				if ev == 's' {
					return &job.Job{ID: h.ID, Task: h.Task, State: job.StateSucceeded}, nil
				}
				if ev == 'c' {
					return nil, &JobError{ID: h.ID, Err: job.ErrCanceled}
				}
			default:
			}
			return nil, &JobError{ID: h.ID, Err: fmt.Errorf("%w: it ended with no retention, was replaced under its key, purged, deleted or trimmed, or was never enqueued to queue %q", job.ErrNotFound, h.Queue)}
		case err != nil:
			return nil, err
		case j.State == job.StateSucceeded:
			return j, nil
		case j.State == job.StateFailed:
			return j, &job.FailedError{ID: j.ID, Message: j.LastError}
		case j.State == job.StateCanceled:
			return j, &JobError{ID: h.ID, Err: job.ErrCanceled}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case ev := <-events:
			switch ev {
			case 'c':
				// the job is kept as canceled unless it was replaced or purged
				j, _ := h.Job(ctx)
				return j, &JobError{ID: h.ID, Err: job.ErrCanceled}
			case 's':
				if j, err := h.Job(ctx); err == nil {
					return j, nil
				}
				return &job.Job{ID: h.ID, Task: h.Task, State: job.StateSucceeded}, nil
			}
			// 'f' or 'r' (reconnected): read again
		}
	}
}

// Result waits for the job and decodes its result into v.
func (h *Handle) Result(ctx context.Context, v any) error {
	j, err := h.Wait(ctx)
	if err != nil {
		return err
	}
	return j.DecodeResult(v)
}

// WaitResult waits for a typed result.
func WaitResult[R any](ctx context.Context, h *Handle) (R, error) {
	var r R
	err := h.Result(ctx, &r)
	return r, err
}
