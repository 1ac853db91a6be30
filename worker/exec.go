package worker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
)

// outcome is how one attempt ended.
type outcome struct {
	result any
	err    error
	stack  string
	ran    time.Duration // the handler's run time
	// abandoned: decided by a timer while the handler still runs (it ignored its
	// context past a hard deadline or a stop); its goroutine is left to end on its own
	abandoned bool
}

// startHandOff runs a job handed to this worker while idle, then claims it (a full
// lease of this worker's own) and takes the worker off the idle lists in one round
// trip. Claiming after the start is safe while the lease it was handed with has at
// least half to run — judged by that lease (from the entry, not this worker's), on
// Redis' clock — so it cannot have been taken back. An older entry, or one for a job
// this worker already runs under another lease (a stale entry: the job was taken back
// and fetched again), is claimed first, and runs only if the claim succeeds.
func (w *Worker) startHandOff(queueName string, wake store.Wake, idleQueues []string) {
	f := *wake.HandOff
	claim := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		unidle := idleQueues
		if w.isolate {
			// the claim and its own queue's idle entry share a node; the other queues'
			// entries may be on others, whose trouble must not hold or undo the claim
			unidle = []string{queueName}
			others := slices.DeleteFunc(slices.Clone(idleQueues), func(q string) bool { return q == queueName })
			go w.unmarkIdle(ctx, others)
		}
		ok, err := w.store.ClaimAndUnidle(ctx, queueName, f.Lease(), w.cfg.ID, unidle, w.cfg.Lease)
		if err != nil {
			w.log.Warn("claim of a handed-off job failed; it runs again after its lease", "job", f.ID, "err", err)
		}
		return ok && err == nil
	}
	reserved := false
	if w.isolate {
		// on a cluster a late fetch may have taken the slot this hand-off was meant for:
		// then claim it and hand it back to pending rather than run past the concurrency
		if w.takeSlots(queueName, 1) == 0 {
			if claim() {
				w.handBackLate(queueName, []store.Fetched{{ID: f.ID}}) // any lease of this worker
			}
			return
		}
		reserved = true
	}
	if w.store.RedisNow().Sub(wake.HandedAt) > wake.HandOffLease/2 || w.runsJob(f.ID) {
		if claim() {
			w.startJobIn(queueName, f, nil, reserved)
		} else if reserved {
			w.giveBackSlot(queueName)
		}
		return
	}
	claimed := make(chan bool, 1)
	r := w.startJobIn(queueName, f, claimed, reserved)
	go func() {
		ok := claim()
		if ok {
			w.mu.Lock()
			r.unclaimed = false // its lease is renewed from now on
			w.mu.Unlock()
		} else {
			r.cancel(job.ErrLeaseExpired) // taken back: it may run elsewhere; stop this run
		}
		claimed <- ok
	}()
}

// runsJob reports whether the worker holds a run of job id.
func (w *Worker) runsJob(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := range w.held {
		if k.id == id {
			return true
		}
	}
	return false
}

// startJob takes a slot and runs the fetched job in its own goroutine. claimed, when
// not nil, delivers whether a hand-off claim succeeded; the outcome waits for it.
//
// The handler runs in that goroutine. Its outcome is decided once, by whichever comes
// first: the handler's return, the hard deadline (timeout + HardDeadlineGrace: the
// attempt fails with ErrTimeout, the slot is freed and the goroutine is left to end on
// its own — Go cannot stop a goroutine — its later result dropped), or the end of the
// shutdown grace (the job was handed back; nothing is recorded).
func (w *Worker) startJob(queueName string, f store.Fetched, claimed <-chan bool) *running {
	return w.startJobIn(queueName, f, claimed, false)
}

// startJobIn is startJob; reserved says its slot was taken already (see reserve).
func (w *Worker) startJobIn(queueName string, f store.Fetched, claimed <-chan bool, reserved bool) *running {
	now := f.At // the lease's start, as Redis recorded it: the ack names this lease
	if now.IsZero() {
		now = w.store.Now()
	}
	j := &job.Job{ID: f.ID, Options: job.DefaultOptions(), State: job.StateActive, Attempt: f.Attempts + 1, StartedAt: now, Worker: w.cfg.ID}
	j.Options.Queue = queueName
	var early error   // an outcome known before running
	var due time.Time // when this attempt became due, for the latency histogram
	if prio, task, err := store.ParseLaneMember(f.Lane); err == nil {
		j.Options.Priority, j.Task = prio, task
	}
	j.Options.Estimate = store.LaneEstimate(f.Lane)
	switch {
	case f.Record == nil:
		early = job.SkipRetry(fmt.Errorf("%w: the job's record is missing", job.ErrBadPayload))
	default:
		if err := job.UnmarshalRecord(f.Record, j); err != nil {
			early = job.SkipRetry(err)
		} else if j.Attempt > j.Options.MaxRetries+1 {
			// taken back from lost workers more often than it may be retried
			early = job.SkipRetry(fmt.Errorf("%w after %d attempts", job.ErrLeaseExpired, j.Attempt-1))
		} else if due = attemptDue(j, f); j.Options.LateBy > 0 && now.Sub(due) > j.Options.LateBy {
			// its catch-up policy: pointless this late (after an outage, say)
			early = job.SkipRetry(fmt.Errorf("%w: due %s, starting %s late (SkipIfLate %s)", job.ErrLate,
				due.Format(time.RFC3339), now.Sub(due).Round(time.Millisecond), j.Options.LateBy))
		}
	}
	ctx, cancel := context.WithCancelCause(w.jobsCtx)
	r := &running{j: j, queue: queueName, started: now, key: keyOf(store.Lease{ID: f.ID, Start: now}), cancel: cancel,
		unclaimed: claimed != nil, predicted: f.Predicted, due: due}
	var once sync.Once
	decide := func(out outcome, record bool) {
		once.Do(func() {
			defer w.jobs.Done()
			cancel(nil)
			// atomics, not w.mu: this runs once per job, and w.mu is the worker-wide lock
			r.decided.Store(true)
			if t := r.abandon.Load(); t != nil {
				t.Stop()
			}
			if out.abandoned { // logged here, once: the handler did not return first
				w.log.Warn("job ignored its context; slot freed, goroutine left running", "job", j.ID, "task", j.Task, "err", out.err)
			}
			if !record {
				return
			}
			if claimed != nil && !<-claimed {
				w.log.Warn("a handed-off job was taken back before its claim; outcome dropped", "job", j.ID)
				w.freeSlot(r)
				w.mu.Lock()
				key := r.key
				w.mu.Unlock()
				w.release(key) // this run only: the worker may hold the job under another lease
				return
			}
			w.mu.Lock()
			r.unclaimed = false
			shadowed, key := r.shadowed, r.key
			w.mu.Unlock()
			if shadowed {
				w.log.Warn("a run whose lease was taken back ended after the job came back to this worker; outcome dropped", "job", j.ID)
				w.freeSlot(r)
				w.release(key)
				return
			}
			w.finish(r, out)
		})
	}
	r.decide = decide // before the job is seen in held (stopJob reads it)
	w.mu.Lock()
	if old, ok := w.held[r.key]; ok && !old.decided.Load() {
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
	w.held[r.key] = r
	if !reserved {
		w.perQueue[queueName]++
		w.free--
	}
	w.mu.Unlock()
	w.jobs.Add(1)
	if early != nil {
		go decide(outcome{err: early}, true)
		return r
	}
	go func() {
		h := w.handler(j.Task)
		if h == nil {
			decide(outcome{err: fmt.Errorf("%w: no func registered for task %q on worker %s", job.ErrUnknownTask, j.Task, w.cfg.ID)}, true)
			return
		}
		jctx, jcancel := context.WithTimeout(job.NewContext(ctx, j), j.Options.Timeout)
		defer jcancel()
		hard := time.AfterFunc(addSat(j.Options.Timeout, w.cfg.HardDeadlineGrace), func() {
			decide(outcome{err: fmt.Errorf("%w: still running %s after its timeout of %s; abandoned", job.ErrTimeout, w.cfg.HardDeadlineGrace, j.Options.Timeout),
				abandoned: true}, true)
		})
		defer hard.Stop()
		stopShutdown := context.AfterFunc(w.jobsCtx, func() { decide(outcome{}, false) })
		defer stopShutdown()
		t0 := time.Now()
		out := call(jctx, h, j)
		out.ran = time.Since(t0)
		if out.err != nil && errors.Is(jctx.Err(), context.DeadlineExceeded) && errors.Is(out.err, context.DeadlineExceeded) {
			out.err = fmt.Errorf("%w: ran past its timeout of %s", job.ErrTimeout, j.Options.Timeout)
		}
		decide(out, true)
	}()
	return r
}

// attemptDue is when this attempt became due: the in-lane score (arrival, promotion or
// retry due time, kept across lease reclaims), or, for a first attempt asked for at a
// time already past when enqueued, that time.
func attemptDue(j *job.Job, f store.Fetched) time.Time {
	due := f.Due
	if due.IsZero() || (j.Attempt == 1 && !j.DueAt.IsZero() && j.DueAt.Before(due)) {
		due = j.DueAt
	}
	return due
}

// handler returns the task's handler wrapped in the middleware, or nil.
func (w *Worker) handler(task string) Handler {
	w.mu.Lock()
	h := w.handlers[task]
	mws := w.middleware
	w.mu.Unlock()
	if h == nil {
		return nil
	}
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// call runs h, turning a panic into an ErrPanic outcome with its stack.
func call(ctx context.Context, h Handler, j *job.Job) (o outcome) {
	defer func() {
		if p := recover(); p != nil {
			o = outcome{err: fmt.Errorf("%w: %v", job.ErrPanic, p), stack: string(debug.Stack())}
		}
	}()
	o.result, o.err = h(ctx, j)
	return o
}

// stopJob asks the running job id, if this worker holds it, to stop: its context is
// canceled with cause job.ErrCanceled, and if it has not returned after the hard
// deadline grace it is ended and its slot freed. Redis ends the failure canceled.
func (w *Worker) stopJob(queueName, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var r *running
	for k, h := range w.held {
		// the run under the newest lease: an older one may not be marked lost yet
		if k.id == id && h.queue == queueName && !h.lost && (r == nil || k.startMs > r.key.startMs) {
			r = h
		}
	}
	if r == nil || r.stopAsked || r.decided.Load() {
		return // not ours, heard already, or decided (a failure clears the request, trim a late one)
	}
	r.stopAsked = true
	w.log.Info("stopping a job on request", "job", id, "task", r.j.Task, "queue", queueName)
	r.cancel(fmt.Errorf("%w: asked to stop", job.ErrCanceled))
	// a decide that slips in between the check above and this store leaves the timer
	// running; it then fires into decide's once, a no-op
	r.abandon.Store(time.AfterFunc(w.cfg.HardDeadlineGrace, func() {
		r.decide(outcome{err: fmt.Errorf("%w: asked to stop, still running %s later; abandoned", job.ErrCanceled, w.cfg.HardDeadlineGrace),
			abandoned: true}, true)
	}))
}

// finish frees the job's slot and records its outcome: success goes to the batched
// acker; a failure is scheduled for retry or moved to the failed set, or, for a job
// asked to stop, ends it canceled (fail.lua decides, from the stop request in Redis).
func (w *Worker) finish(r *running, out outcome) {
	j := r.j
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
	w.freeSlot(r)
	dur := w.store.Now().Sub(r.started)
	if out.err == nil {
		w.log.Debug("job succeeded", "job", j.ID, "task", j.Task, "queue", r.queue, "attempt", j.Attempt, "ms", dur.Milliseconds())
		w.acks[r.queue] <- ackItem{queue: r.queue, done: store.Done{ID: j.ID, Retention: j.Options.Retention, Result: payload, Started: r.started,
			Sample: w.sample(j, r, out.ran), Key: j.Options.Key}, task: j.Task, ran: out.ran, wait: r.started.Sub(r.due), known: !r.due.IsZero()}
		return
	}
	f := store.Failure{ID: j.ID, Error: out.err.Error(), Stack: out.stack, Started: r.started}
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
		res, err = w.store.FailResult(ctx, r.queue, w.cfg.ID, f)
		return err
	})
	// log what Redis decided, not what was asked
	switch {
	case err != nil: // record logged it
	case res == store.FailStopped:
		w.log.Info("job stopped on request; canceled", "job", j.ID, "task", j.Task, "queue", r.queue, "err", out.err)
	case res == store.FailNotHeld:
		w.log.Warn("job failed after its lease was taken back; nothing recorded (it runs again, or ran)", "job", j.ID,
			"task", j.Task, "queue", r.queue, "attempt", j.Attempt, "err", out.err)
	case res == store.FailSuperseded:
		w.log.Info("job failed; no retry, a newer job waits under its key", "job", j.ID, "task", j.Task, "queue", r.queue, "err", out.err)
	default:
		w.log.Warn("job failed", "job", j.ID, "task", j.Task, "queue", r.queue, "attempt", j.Attempt,
			"retry", f.Retry, "err", out.err)
	}
	// counted once Redis has said what happened: a lease taken back or a superseded
	// keyed retry is no outcome of this worker's
	if err == nil {
		wait, known := r.started.Sub(r.due), !r.due.IsZero()
		switch {
		case res == store.FailStopped:
			w.metrics.observe(r.queue, j.Task, out.ran, wait, known, "canceled")
		case res != store.FailRecorded:
		case f.Retry:
			w.activity.add(r.queue, w.store.Now(), 0, 0, 1, 0, false)
			w.metrics.observe(r.queue, j.Task, out.ran, wait, known, "retried")
		default:
			w.activity.add(r.queue, w.store.Now(), 0, 1, 0, 0, false)
			w.metrics.observe(r.queue, j.Task, out.ran, wait, known, "failed")
		}
	}
	w.release(r.key)
}

// sample is what a succeeded job teaches the learned order.
func (w *Worker) sample(j *job.Job, r *running, ran time.Duration) store.Sample {
	name, cost := store.CostName(j.Options.Cost)
	return store.Sample{Task: j.Task, Predicted: r.predicted, Ran: ran, Enqueued: j.EnqueuedAt, Started: r.started,
		CostName: name, Cost: cost}
}

// freeSlot gives the job's slot back and wakes the fetch loop.
func (w *Worker) freeSlot(r *running) {
	w.mu.Lock()
	r.done = true
	w.perQueue[r.queue]--
	w.free++
	capped := w.capped[r.queue]
	w.mu.Unlock()
	w.freed.Add(1) // before reading idleBlocked: see waitIdle
	select {
	case w.slotFreed <- struct{}{}:
	default:
	}
	if capped && w.idleBlocked.Load() {
		// the fetch loop sleeps without listening to this queue (it was at its cap),
		// whose jobs may be pending: poke it awake
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = w.store.Poke(ctx, w.cfg.ID)
		}()
	}
}

// release forgets runs whose outcome is recorded (or refused).
func (w *Worker) release(keys ...leaseKey) {
	w.mu.Lock()
	for _, k := range keys {
		delete(w.held, k)
	}
	w.mu.Unlock()
}

// addSat is a + b for non-negative durations, saturating instead of wrapping: a
// timeout near the largest Duration must not make the hard deadline fire at once.
func addSat(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// record runs a state change, retrying while Redis is unreachable (up to a minute:
// after that the lease has long expired and the job runs again elsewhere).
func (w *Worker) record(op func(ctx context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for n := 1; ; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := op(ctx)
		cancel()
		if err == nil || !store.IsConnError(err) || time.Now().After(deadline) {
			if err != nil {
				w.log.Error("could not record a job's outcome", "err", err)
			}
			return err
		}
		time.Sleep(backoff(n)) // Redis is away: nothing to wait on but time
	}
}

// ackLoop records queue's successes in batches: it takes what is waiting and
// acknowledges it in one script run. Each queue has its own loop, so that a queue
// whose Redis node is away holds only its own acknowledgements.
func (w *Worker) ackLoop(q string, acks <-chan ackItem) {
	defer w.bg.Done()
	for first := range acks {
		items := []ackItem{first}
	drain:
		for len(items) < 256 {
			select {
			case a, ok := <-acks:
				if !ok {
					break drain
				}
				items = append(items, a)
			default:
				break drain
			}
		}
		done := make([]store.Done, len(items))
		for i, it := range items {
			done[i] = it.done
		}
		var lost []string
		err := w.record(func(ctx context.Context) error {
			var err error
			lost, err = w.store.Ack(ctx, q, w.cfg.ID, done)
			return err
		})
		if len(lost) > 0 {
			w.log.Warn("jobs finished after their lease was taken back; they may run twice", "queue", q, "jobs", lost)
		}
		gone := map[string]bool{}
		for _, id := range lost {
			gone[id] = true
		}
		now := w.store.Now()
		for _, it := range items {
			if err == nil && !gone[it.done.ID] { // counted once Redis has recorded it
				w.activity.add(q, now, 1, 0, 0, it.wait, it.known)
				w.metrics.observe(q, it.task, it.ran, it.wait, it.known, "succeeded")
			}
		}
		keys := make([]leaseKey, len(done))
		for i, d := range done {
			keys[i] = keyOf(store.Lease{ID: d.ID, Start: d.Started})
		}
		w.release(keys...)
	}
}
