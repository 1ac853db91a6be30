package worker

import (
	"context"
	"fmt"
	"math"
	"runtime/debug"
	"slices"
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
//
// A fresh hand-off is returned unlaunched: the fetch loop's goroutine, woken by it,
// runs it at once (see fetchLoop), rather than wake a runner on another thread.
func (w *Worker) startHandOff(queueName string, wake store.Wake, idleQueues []string) (inline *execution) {
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
			return nil
		}
		reserved = true
	}
	if w.store.RedisNow().Sub(wake.HandedAt) > wake.HandOffLease/2 || w.runsJob(f.ID) {
		if claim() {
			w.start(queueName, f, nil, reserved)
		} else if reserved {
			w.giveBackSlot(queueName)
		}
		return nil
	}
	claimed := make(chan bool, 1)
	r := w.begin(queueName, f, claimed, reserved)
	w.claims.Add(1) // Stop waits for it before handing back: see stop
	go func() {
		defer w.claims.Done()
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
	return r
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
	var r *execution
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

// freeSlot gives the job's slot back and wakes the fetch loop.
func (w *Worker) freeSlot(r *execution) {
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
				w.metrics.observe(q, it.task, it.ran, it.wait, it.known, OutcomeSucceeded)
			}
		}
		keys := make([]leaseKey, len(done))
		for i, d := range done {
			keys[i] = keyOf(store.Lease{ID: d.ID, Start: d.Started})
		}
		w.release(keys...)
	}
}
