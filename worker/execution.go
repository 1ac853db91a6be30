package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
)

// execution is one attempt of a fetched job on this worker. Its steps, in order:
//
//   - start (Worker.start): the slot, the lease it is held by, the job read back from
//     its lane and record (prepare), then a runner;
//   - run: the handler under its timeout, with the hard deadline armed;
//   - decide: once, by whichever comes first of the handler's return (or its exit
//     from its goroutine), the hard deadline (timeout + HardDeadlineGrace), a request
//     to stop ignored past that grace, or the end of the shutdown grace (the job was
//     handed back; nothing is recorded) — Go cannot stop a goroutine, so a handler decided against is left to
//     end on its own and its result dropped;
//   - finish: the slot given back and the outcome sent to Redis (an acknowledgement
//     batched by the queue's acker, or a failure scheduled for retry or ended).
//
// Its fields other than those set at start are guarded by w.mu, except decided and
// abandon (atomics: decide runs once per job, and w.mu is the worker-wide lock).
type execution struct {
	w       *Worker
	j       *job.Job
	queue   string
	started time.Time // the lease's start, as Redis set it
	key     leaseKey
	ctx     context.Context // the job's context; canceled with a cause (cancel)
	cancel  context.CancelCauseFunc
	// claimed, when not nil, delivers whether the claim of a hand-off succeeded: the
	// outcome waits for it (startHandOff)
	claimed <-chan bool
	early   error     // an outcome known before running (prepare)
	due     time.Time // when the attempt became due (zero: unknown)
	// predicted is the run time in ms the fetch predicted (0: none)
	predicted float64
	fair      string      // the fair set it was taken from (store.Fetched.Fair)
	decided   atomic.Bool // decide has begun (it runs once): a stop request comes too late
	done      bool        // outcome decided and its slot freed, waiting for Redis
	// stopAsked: the job was asked to stop (StopJob); Redis then ends a failure of it
	// canceled (fail.lua), whether or not this worker heard in time
	stopAsked bool
	abandon   atomic.Pointer[time.Timer] // ends it if it ignores the stop; stopped once decided
	// unclaimed: a hand-off whose claim is in flight; its lease is not renewed yet
	unclaimed bool
	// lost: renewal found the lease taken back; the run's context is canceled and
	// Redis will refuse its outcome
	lost bool
	// shadowed: the job came back to this worker under a lease of the same start ms
	// while this run held it (see start); Redis cannot tell the two apart, so this
	// run's outcome is dropped here
	shadowed bool
}

// lease is the lease the run holds.
func (e *execution) lease() store.Lease {
	return store.Lease{ID: e.key.id, Start: time.UnixMilli(e.key.startMs)}
}

// startJob takes a slot and runs the fetched job. claimed, when not nil, delivers
// whether a hand-off claim succeeded; the outcome waits for it.
func (w *Worker) startJob(queueName string, f store.Fetched, claimed <-chan bool) *execution {
	return w.start(queueName, f, claimed, false)
}

// start is startJob; reserved says its slot was taken already (see takeSlots).
func (w *Worker) start(queueName string, f store.Fetched, claimed <-chan bool, reserved bool) *execution {
	e := w.begin(queueName, f, claimed, reserved)
	w.runners.launch(e.run)
	return e
}

// begin is start but for the launch: the caller runs e.run on a goroutine of its own.
func (w *Worker) begin(queueName string, f store.Fetched, claimed <-chan bool, reserved bool) *execution {
	at := f.At // the lease's start, as Redis recorded it: the ack names this lease
	if at.IsZero() {
		at = w.store.Now()
	}
	ctx, cancel := context.WithCancelCause(w.jobsBase)
	e := &execution{w: w, queue: queueName, started: at, key: keyOf(store.Lease{ID: f.ID, Start: at}), ctx: ctx, cancel: cancel,
		claimed: claimed, unclaimed: claimed != nil, predicted: f.Predicted, fair: f.Fair}
	e.prepare(f)
	w.mu.Lock()
	if old, ok := w.held[e.key]; ok && !old.decided.Load() {
		// Redis leased the job to this worker again in the same millisecond as the run
		// still held under that lease (it was taken back in between): both would name one
		// lease, and Redis could not refuse the old run's outcome. The old run has lost
		// its lease: cancel it, keep it apart, and drop its outcome here.
		w.shadows++
		old.lost, old.shadowed = true, true
		old.key.startMs = -w.shadows // a key no lease has
		w.held[old.key] = old
		old.cancel(job.ErrLeaseExpired)
	}
	w.held[e.key] = e
	if !reserved {
		w.perQueue[queueName]++
		w.free--
	}
	w.mu.Unlock()
	w.jobs.Add(1)
	return e
}

// prepare reads the job back from the fetched lane member and record, and decides the
// outcomes known before running: no record, an undecodable one, too many attempts, too
// late for its catch-up policy.
func (e *execution) prepare(f store.Fetched) {
	j := &job.Job{ID: f.ID, Options: job.DefaultOptions(), State: job.StateActive, Attempt: f.Attempts + 1, StartedAt: e.started, Worker: e.w.cfg.ID}
	e.j = j
	j.Options.Queue = e.queue
	if prio, task, err := store.ParseLaneMember(f.Lane); err == nil {
		j.Options.Priority, j.Task = prio, task
	}
	j.Options.Estimate = store.LaneEstimate(f.Lane)
	if f.Record == nil {
		e.early = job.SkipRetry(fmt.Errorf("%w: the job's record is missing", job.ErrBadPayload))
		return
	}
	if err := store.UnmarshalRecord(f.Record, j); err != nil {
		e.early = job.SkipRetry(err)
		return
	}
	if j.Attempt > j.Options.MaxRetries+1 {
		// taken back from lost workers more often than it may be retried
		e.early = job.SkipRetry(fmt.Errorf("%w after %d attempts", job.ErrLeaseExpired, j.Attempt-1))
		return
	}
	e.due = attemptDue(j, f)
	if late := e.started.Sub(e.due); j.Options.LateBy > 0 && late > j.Options.LateBy {
		// its catch-up policy: pointless this late (after an outage, say)
		e.early = job.SkipRetry(fmt.Errorf("%w: due %s, starting %s late (SkipIfLate %s)", job.ErrLate,
			e.due.Format(time.RFC3339), late.Round(time.Millisecond), j.Options.LateBy))
	}
}

// run calls the handler under the job's timeout and decides the outcome, unless the
// hard deadline, a stop or the shutdown decided it first.
func (e *execution) run() {
	if e.early != nil {
		e.decide(outcome{err: e.early}, true)
		return
	}
	w, j := e.w, e.j
	h := w.handler(j.Task)
	if h == nil {
		e.decide(outcome{err: fmt.Errorf("%w: no func registered for task %q on worker %s", job.ErrUnknownTask, j.Task, w.cfg.ID)}, true)
		return
	}
	jctx, jcancel := context.WithTimeout(job.NewContext(e.ctx, j), j.Options.Timeout)
	defer jcancel()
	hard := time.AfterFunc(addSat(j.Options.Timeout, w.cfg.HardDeadlineGrace), func() {
		e.decide(outcome{err: fmt.Errorf("%w: still running %s after its timeout of %s; abandoned", job.ErrTimeout, w.cfg.HardDeadlineGrace, j.Options.Timeout),
			abandoned: true}, true)
	})
	defer hard.Stop()
	returned := false
	defer func() {
		if !returned { // the handler ended its goroutine (runtime.Goexit, t.FailNow): it will never return
			e.decide(outcome{err: fmt.Errorf("%w: the handler exited its goroutine (runtime.Goexit) without returning", job.ErrPanic)}, true)
		}
	}()
	t0 := time.Now()
	out := call(jctx, h, j)
	returned = true
	out.ran = time.Since(t0)
	if out.err != nil && errors.Is(jctx.Err(), context.DeadlineExceeded) && errors.Is(out.err, context.DeadlineExceeded) {
		out.err = fmt.Errorf("%w: ran past its timeout of %s", job.ErrTimeout, j.Options.Timeout)
	}
	e.decide(out, true)
}

// decide settles the attempt's outcome, once: the first call decides, and a later one
// returns at once, without waiting for the first to finish (which may retry Redis for
// a minute). record false (the shutdown grace ended: the job was handed back) records
// nothing.
func (e *execution) decide(out outcome, record bool) {
	if !e.decided.CompareAndSwap(false, true) {
		return
	}
	func() {
		w := e.w
		defer w.jobs.Done()
		e.cancel(nil)
		if t := e.abandon.Load(); t != nil {
			t.Stop()
		}
		if out.abandoned { // logged here, once: the handler did not return first
			w.log.Warn("job ignored its context; slot freed, goroutine left running", "job", e.j.ID, "task", e.j.Task, "err", out.err)
		}
		if !record {
			return
		}
		if e.claimed != nil && !<-e.claimed {
			w.log.Warn("a handed-off job was taken back before its claim; outcome dropped", "job", e.j.ID)
			e.drop()
			return
		}
		w.mu.Lock()
		e.unclaimed = false
		shadowed := e.shadowed
		w.mu.Unlock()
		if shadowed {
			w.log.Warn("a run whose lease was taken back ended after the job came back to this worker; outcome dropped", "job", e.j.ID)
			e.drop()
			return
		}
		e.finish(out)
	}()
}

// drop ends a run whose outcome Redis must not hear: its slot and this run (only: the
// worker may hold the job under another lease) are let go.
func (e *execution) drop() {
	e.w.freeSlot(e)
	e.w.mu.Lock()
	key := e.key
	e.w.mu.Unlock()
	e.w.release(key)
}

// finish frees the job's slot and records its outcome: success goes to the batched
// acker; a failure is scheduled for retry or moved to the failed set, or, for a job
// asked to stop, ends it canceled (fail.lua decides, from the stop request in Redis).
func (e *execution) finish(out outcome) {
	w, j := e.w, e.j
	var payload []byte
	if out.err == nil && out.result != nil {
		p, err := job.EncodeArgs(out.result)
		switch {
		case err != nil:
			out.err = job.SkipRetry(fmt.Errorf("result of task %q cannot be encoded: %w", j.Task, err))
		case len(p) > w.cfg.MaxResult: // Redis would refuse it: the ack would fail run after run
			out.err = job.SkipRetry(fmt.Errorf("result of task %q is %d bytes encoded, over the %d byte limit (worker.Config.MaxResult)",
				j.Task, len(p), w.cfg.MaxResult))
		default:
			payload = p
		}
	}
	w.freeSlot(e)
	if out.err == nil {
		if w.log.Enabled(context.Background(), slog.LevelDebug) { // its arguments cost as much as the rest of finish
			w.log.Debug("job succeeded", "job", j.ID, "task", j.Task, "queue", e.queue, "attempt", j.Attempt,
				"ms", w.store.Now().Sub(e.started).Milliseconds())
		}
		w.acks[e.queue] <- ackItem{queue: e.queue, done: store.Done{ID: j.ID, Retention: j.Options.Retention, Result: payload, Started: e.started,
			Sample: e.sample(out.ran), Key: j.Options.Key, Fair: e.fair}, task: j.Task, ran: out.ran, wait: e.started.Sub(e.due), known: !e.due.IsZero()}
		return
	}
	e.fail(out)
}

// fail records a failed attempt: scheduled for retry, or ended.
func (e *execution) fail(out outcome) {
	w, j := e.w, e.j
	f := store.Failure{ID: j.ID, Error: out.err.Error(), Stack: out.stack, Started: e.started}
	var after *job.RetryAfterError
	switch {
	case job.IsSkipRetry(out.err) || j.Attempt > j.Options.MaxRetries:
	case errors.As(out.err, &after):
		f.Retry, f.Due = true, w.store.Now().Add(after.Delay)
	default:
		f.Retry, f.Due = true, w.store.Now().Add(j.Options.Backoff.Delay(j.Attempt, w.cfg.Random))
	}
	var res store.FailOutcome
	err := w.record(func(ctx context.Context) error {
		var err error
		res, err = w.store.FailResult(ctx, e.queue, w.cfg.ID, f)
		return err
	})
	// log what Redis decided, not what was asked
	switch {
	case err != nil: // record logged it
	case res == store.FailStopped:
		w.log.Info("job stopped on request; canceled", "job", j.ID, "task", j.Task, "queue", e.queue, "err", out.err)
	case res == store.FailNotHeld:
		w.log.Warn("job failed after its lease was taken back; nothing recorded (it runs again, or ran)", "job", j.ID,
			"task", j.Task, "queue", e.queue, "attempt", j.Attempt, "err", out.err)
	case res == store.FailSuperseded:
		w.log.Info("job failed; no retry, a newer job waits under its key", "job", j.ID, "task", j.Task, "queue", e.queue, "err", out.err)
	default:
		w.log.Warn("job failed", "job", j.ID, "task", j.Task, "queue", e.queue, "attempt", j.Attempt,
			"retry", f.Retry, "err", out.err)
	}
	// counted once Redis has said what happened: a lease taken back or a superseded
	// keyed retry is no outcome of this worker's
	if err == nil {
		wait, known := e.started.Sub(e.due), !e.due.IsZero()
		switch {
		case res == store.FailStopped:
			w.metrics.observe(e.queue, j.Task, out.ran, wait, known, OutcomeCanceled)
		case res != store.FailRecorded:
		case f.Retry:
			w.activity.add(e.queue, w.store.Now(), 0, 0, 1, 0, false)
			w.metrics.observe(e.queue, j.Task, out.ran, wait, known, OutcomeRetried)
		default:
			w.activity.add(e.queue, w.store.Now(), 0, 1, 0, 0, false)
			w.metrics.observe(e.queue, j.Task, out.ran, wait, known, OutcomeFailed)
		}
	}
	w.release(e.key)
}

// sample is what a succeeded job teaches the learned order.
func (e *execution) sample(ran time.Duration) store.Sample {
	j := e.j
	name, cost := store.CostName(j.Options.Cost)
	return store.Sample{Task: j.Task, Predicted: e.predicted, Ran: ran, Enqueued: j.EnqueuedAt, Started: e.started,
		CostName: name, Cost: cost}
}

// endUndecided decides every run still undecided when the shutdown grace ends: the
// jobs were handed back, so nothing is recorded; their contexts are canceled.
func (w *Worker) endUndecided() {
	w.mu.Lock()
	var open []*execution
	for _, e := range w.held {
		if !e.decided.Load() {
			open = append(open, e)
		}
	}
	w.mu.Unlock()
	for _, e := range open {
		e.decide(outcome{}, false)
	}
}

// runners are the goroutines executions run on. A runner that finishes a job waits
// for the next instead of ending, so a job starts on a goroutine whose stack has
// grown already: a new goroutine per job spent more CPU growing its stack than the
// worker spent on the rest of the job (docs/benchmarks.md). At most Concurrency
// runners wait; a handler left running past its hard deadline keeps its runner, which
// ends or waits once the handler returns.
type runners struct {
	next    chan func() // unbuffered: a send succeeds only when a runner waits
	waiting atomic.Int64
	max     int64
	made    atomic.Int64  // runners started so far
	closed  chan struct{} // closed at Stop: waiting runners end
}

func newRunners(max int) runners {
	return runners{next: make(chan func()), max: int64(max), closed: make(chan struct{})}
}

// launch calls run on a waiting runner, or on a new one.
func (rs *runners) launch(run func()) {
	select {
	case rs.next <- run:
	default:
		rs.made.Add(1)
		go rs.loop(run)
	}
}

func (rs *runners) loop(run func()) {
	for {
		run()
		if rs.waiting.Add(1) > rs.max {
			rs.waiting.Add(-1)
			return
		}
		select {
		case run = <-rs.next:
			rs.waiting.Add(-1)
		case <-rs.closed:
			rs.waiting.Add(-1)
			return
		}
	}
}

// close ends the waiting runners (no execution is launched after Stop's grace).
func (rs *runners) close() { close(rs.closed) }
