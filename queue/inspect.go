package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
)

// Counts are a queue's job counts by state and its lifetime counters.
//
// Counts, WorkerInfo, RunningJob and Minute mirror the store's types field for field:
// the public API hands out no internal type, and the conversions below (Counts(n),
// RunningJob(r), Minute(m)) stop compiling if the two ever drift apart.
type Counts struct {
	Pending   int64 `json:"pending"`
	Scheduled int64 `json:"scheduled"`
	Active    int64 `json:"active"`
	Failed    int64 `json:"failed"`
	Succeeded int64 `json:"succeeded"`
	Canceled  int64 `json:"canceled"`
	// counters since the queue began
	Processed   int64 `json:"processed_total"`
	FailedTotal int64 `json:"failed_total"`
	Retried     int64 `json:"retried_total"`
	Paused      bool  `json:"paused"`
}

// WorkerInfo is a live worker as its heartbeat describes it.
type WorkerInfo struct {
	ID          string         `json:"id"`
	Host        string         `json:"host"`
	PID         int            `json:"pid"`
	Queues      []string       `json:"queues"`
	Weights     map[string]int `json:"weights,omitempty"`
	Strict      bool           `json:"strict"`
	Concurrency int            `json:"concurrency"`
	// Slots is the worker's job slots now: Concurrency, or, with autoscaling
	// (worker.Config.Autoscale), the size it chose, Concurrency being the ceiling.
	Slots   int          `json:"slots"`
	Running []RunningJob `json:"running"`
	Started time.Time    `json:"started"`
	Beat    time.Time    `json:"beat"`
}

// RunningJob is one job a worker is running.
type RunningJob struct {
	ID      string    `json:"id"`
	Queue   string    `json:"queue"`
	Task    string    `json:"task"`
	Started time.Time `json:"started"`
}

// Queues lists every queue that has been enqueued to.
func (c *Client) Queues(ctx context.Context) ([]string, error) { return c.store.Queues(ctx) }

// Counts returns queue's job counts by state.
func (c *Client) Counts(ctx context.Context, queue string) (Counts, error) {
	n, err := c.store.Counts(ctx, queue)
	return Counts(n), err
}

// List returns up to limit jobs of queue in state from offset: pending in dequeue
// order, scheduled by due time, active by lease deadline, failed, succeeded and
// canceled newest first.
func (c *Client) List(ctx context.Context, queue string, state job.State, offset, limit int) ([]*job.Job, error) {
	if offset < 0 || limit <= 0 {
		return nil, fmt.Errorf("chronoq: list needs offset >= 0 and limit > 0 (got %d, %d)", offset, limit)
	}
	var ids []string
	var err error
	if state == job.StatePending {
		ids, err = c.store.PendingIDs(ctx, queue, offset, limit)
	} else {
		ids, err = c.store.SetIDs(ctx, queue, state, offset, limit)
	}
	if err != nil {
		return nil, err
	}
	return c.store.Jobs(ctx, queue, ids)
}

// Job reads one job of queue.
func (c *Client) Job(ctx context.Context, queue, id string) (*job.Job, error) {
	return c.Handle(queue, id).Job(ctx)
}

// FindJob looks a job up by id in every queue.
func (c *Client) FindJob(ctx context.Context, id string) (*job.Job, error) {
	qs, err := c.Queues(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		j, err := c.store.Job(ctx, q, id)
		if err == nil {
			return j, nil
		}
		if err != store.ErrNotFound {
			return nil, err
		}
	}
	return nil, &JobError{ID: id, Err: job.ErrNotFound}
}

// Cancel cancels a pending or scheduled job: it never runs, waiters get
// job.ErrCanceled, and it is kept in state canceled for a day (at most 100,000 per
// queue) for inspection. A running job gives ErrJobActive (see StopJob), an ended one
// ErrJobEnded, an unknown one job.ErrNotFound.
func (c *Client) Cancel(ctx context.Context, queue, id string) error {
	_, _, err := c.store.Cancel(ctx, queue, id, "", store.CancelKeep)
	return mapErr(err, id)
}

// StopJob cancels a job whatever its state, like Celery's revoke(terminate=True) or
// asynq's CancelProcessing. A waiting job is canceled at once, as by Cancel. A running
// one is asked to stop (running is true): its worker cancels the func's context, with
// cause job.ErrCanceled, within milliseconds (at the latest at its next lease renewal),
// and the job ends canceled once the func returns an error, or after the worker's
// HardDeadlineGrace if it ignores its context. A func that returns nil anyway has
// finished its work: it ends succeeded. A stopped job is never retried, even when its
// worker dies. An ended job gives ErrJobEnded.
func (c *Client) StopJob(ctx context.Context, queue, id string) (running bool, err error) {
	how, _, err := c.store.Cancel(ctx, queue, id, "", store.CancelStop)
	return how == store.Stopping, mapErr(err, id)
}

// Delete removes a job in any state but active: nothing of it is kept (reading it, or a
// Wait begun later, gives job.ErrNotFound) and its schedule key is free. A pending or
// scheduled job never runs, and waiters already listening get job.ErrCanceled, as
// when it is purged; Cancel keeps it in state canceled instead. A running job gives
// ErrJobActive, an unknown one job.ErrNotFound.
func (c *Client) Delete(ctx context.Context, queue, id string) error {
	_, _, err := c.store.Cancel(ctx, queue, id, "", store.CancelDelete)
	return mapErr(err, id)
}

// Requeue moves the given failed jobs (or, with no ids, every job failed when the call
// began) of queue back to pending with a fresh set of retries; it returns how many
// moved. A job a live worker fails again meanwhile stays failed: it is moved once. A
// keyed job whose schedule key now names a newer job stays failed (it would wait
// beside it) and is not counted; requeueing every job goes on past such jobs, however
// many there are.
func (c *Client) Requeue(ctx context.Context, queue string, ids ...string) (int, error) {
	return c.store.RequeueFailed(ctx, queue, ids, c.store.Now())
}

// Purge deletes every job of queue in state (pending when state is empty): pending,
// scheduled, failed, succeeded or canceled; active jobs are never purged. progress, if not nil,
// is called after each chunk with the running total.
func (c *Client) Purge(ctx context.Context, queue string, state job.State, progress func(deleted int)) (int, error) {
	if state == "" {
		state = job.StatePending
	}
	switch state {
	case job.StatePending, job.StateScheduled, job.StateFailed, job.StateSucceeded, job.StateCanceled:
	default:
		return 0, fmt.Errorf("chronoq: cannot purge %q jobs (pending, scheduled, failed, succeeded or canceled)", state)
	}
	total := 0
	for {
		n, err := c.store.Purge(ctx, queue, state, store.PurgePage)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
		if progress != nil {
			progress(total)
		}
	}
}

// Pause stops every worker from taking jobs of queue; enqueue still works.
func (c *Client) Pause(ctx context.Context, queue string) error { return c.store.Pause(ctx, queue) }

// Resume undoes Pause.
func (c *Client) Resume(ctx context.Context, queue string) error { return c.store.Resume(ctx, queue) }

// Workers lists the live workers.
func (c *Client) Workers(ctx context.Context) ([]WorkerInfo, error) {
	ws, err := c.store.Workers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]WorkerInfo, len(ws))
	for i, w := range ws {
		running := make([]RunningJob, len(w.Running))
		for k, r := range w.Running {
			running[k] = RunningJob(r)
		}
		slots := w.Slots
		if slots == 0 { // a worker of a release before autoscaling
			slots = w.Concurrency
		}
		out[i] = WorkerInfo{ID: w.ID, Host: w.Host, PID: w.PID, Queues: w.Queues, Weights: w.Weights, Strict: w.Strict,
			Concurrency: w.Concurrency, Slots: slots, Running: running, Started: w.Started, Beat: w.Beat}
	}
	return out, nil
}

// JobByKey reads the job last enqueued under schedule key in queue, while it has not
// ended (a job's key is released when it succeeds, fails for good or is canceled).
func (c *Client) JobByKey(ctx context.Context, queue, key string) (*job.Job, error) {
	id, err := c.store.IDByKey(ctx, queue, key)
	if err != nil {
		return nil, keyErr(err, key)
	}
	j, err := c.store.Job(ctx, queue, id)
	if err != nil {
		return nil, keyErr(err, key)
	}
	return j, nil
}

// CancelKey cancels the job waiting under schedule key (the seed scenario: an employee
// punched out by hand, so the automatic punch-out goes). An unknown key gives an error
// wrapping job.ErrNotFound that names the key.
func (c *Client) CancelKey(ctx context.Context, queue, key string) error {
	how, id, err := c.store.Cancel(ctx, queue, "", key, store.CancelKeep)
	if how == store.CancelMissing {
		return keyErr(err, key)
	}
	return mapErr(err, id)
}

// StopKey is StopJob for the job under schedule key: it cancels it while it waits, or
// asks it to stop while it runs (running is true).
func (c *Client) StopKey(ctx context.Context, queue, key string) (running bool, err error) {
	how, id, err := c.store.Cancel(ctx, queue, "", key, store.CancelStop)
	if how == store.CancelMissing {
		return false, keyErr(err, key)
	}
	return how == store.Stopping, mapErr(err, id)
}

// Upcoming lists queue's scheduled jobs due from from to to, earliest first, at most limit.
func (c *Client) Upcoming(ctx context.Context, queue string, from, to time.Time, limit int) ([]*job.Job, error) {
	if limit <= 0 || to.Before(from) {
		return nil, fmt.Errorf("chronoq: upcoming needs from <= to and limit > 0")
	}
	ids, err := c.store.Upcoming(ctx, queue, from, to, limit)
	if err != nil {
		return nil, err
	}
	return c.store.Jobs(ctx, queue, ids)
}

func keyErr(err error, key string) error {
	if err == store.ErrNotFound {
		return fmt.Errorf("%w: no job waits under schedule key %q", job.ErrNotFound, key)
	}
	return err
}

// DeclareQueue registers a queue before anything is enqueued to it (beat entries may
// only name known queues). Workers declare the queues they serve.
func (c *Client) DeclareQueue(ctx context.Context, name string) error {
	if err := job.ValidateQueueName(name); err != nil {
		return err
	}
	return c.registerQueue(ctx, name)
}

// Minute is one minute of a queue's activity: jobs that succeeded, failed for good and
// were scheduled for a retry, and the wait from due to start of the succeeded ones.
type Minute struct {
	Start                      time.Time
	Succeeded, Failed, Retried int64
	WaitSum                    time.Duration // summed wait from due to start of the succeeded jobs that report it
	WaitCount                  int64
	WaitMax                    time.Duration
}

// Activity returns the queue's last n minutes (n ≤ 60), oldest first, the current
// minute last: the dashboard's throughput, failure rate and wait. Kept in Redis by the
// scripts that record outcomes, so every dashboard sees every worker's activity.
func (c *Client) Activity(ctx context.Context, queue string, minutes int) ([]Minute, error) {
	if minutes <= 0 || minutes > store.ActivityMinutes {
		return nil, fmt.Errorf("chronoq: activity needs 1 to %d minutes (got %d)", store.ActivityMinutes, minutes)
	}
	ms, err := c.store.Activity(ctx, queue, minutes)
	if err != nil {
		return nil, err
	}
	out := make([]Minute, len(ms))
	for i, m := range ms {
		out[i] = Minute(m)
	}
	return out, nil
}

// ActivitySummary sums minutes of a queue's activity.
type ActivitySummary struct {
	Minutes     int           `json:"minutes"`
	Succeeded   int64         `json:"succeeded"`
	Failed      int64         `json:"failed"`
	Retried     int64         `json:"retried"`
	PerMinute   float64       `json:"succeeded_per_minute"`
	FailureRate float64       `json:"failure_rate"` // failed attempts (retried or not) / attempts; 0 without attempts
	WaitMean    time.Duration `json:"wait_mean_ns"`
	WaitMax     time.Duration `json:"wait_max_ns"`
}

// Summarize sums the activity of mins (as Activity returns them, the current minute
// last) as of now: the rate is per minute of time elapsed in the window, so a current
// minute only begun does not dilute it.
func Summarize(mins []Minute, now time.Time) ActivitySummary {
	s := ActivitySummary{Minutes: len(mins)}
	var waitSum time.Duration
	var waitN int64
	for _, m := range mins {
		s.Succeeded += m.Succeeded
		s.Failed += m.Failed
		s.Retried += m.Retried
		waitSum += m.WaitSum
		waitN += m.WaitCount
		s.WaitMax = max(s.WaitMax, m.WaitMax)
	}
	if len(mins) > 0 {
		elapsed := now.Sub(mins[0].Start).Minutes()
		elapsed = min(max(elapsed, float64(len(mins)-1)+1.0/60), float64(len(mins)))
		s.PerMinute = float64(s.Succeeded) / elapsed
	}
	if attempts := s.Succeeded + s.Failed + s.Retried; attempts > 0 {
		s.FailureRate = float64(s.Failed+s.Retried) / float64(attempts)
	}
	if waitN > 0 {
		s.WaitMean = waitSum / time.Duration(waitN)
	}
	return s
}
