package worker

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/redis/go-redis/v9"
)

// fetchLoop takes jobs while there are free slots, and blocks on the wake-up lists
// when every queue is empty.
func (w *Worker) fetchLoop(ctx context.Context) {
	defer w.loops.Done()
	blocking, closeBlocking := w.store.BlockingClient(w.cfg.IdleBlock + 2*time.Second)
	stopped := make(chan struct{})
	defer close(stopped)
	go func() { // Stop interrupts an idle wait by closing its connection
		select {
		case <-ctx.Done():
			if w.store.IsCluster() { // the shared cluster client cannot be closed: poke
				pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = w.store.Poke(pctx, w.cfg.ID)
				cancel()
			}
		case <-stopped:
		}
		closeBlocking()
	}()
	errs, waitErrs := 0, 0
	handedOff := false
	wokeFor := "" // the queue whose wake-up token ended the last idle wait
	for ctx.Err() == nil {
		free := w.waitFree(ctx)
		if free == 0 {
			return
		}
		var got int
		var err error
		gen := w.freed.Load()
		if !handedOff {
			var tried map[string]bool
			got, tried, err = w.fetchRound(ctx, free)
			if wokeFor != "" && !tried[wokeFor] {
				// the token was for a queue this round had no slot left for: pass it on
				// to another idle worker instead of leaving that queue's jobs waiting
				w.nudge(wokeFor)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			errs++
			w.log.Warn("fetch failed; retrying", "err", err, "in", backoff(errs))
			sleepCtx(ctx, backoff(errs))
			continue
		}
		errs = 0
		if got > 0 {
			continue
		}
		handedOff, wokeFor, err = w.waitIdle(ctx, blocking, gen)
		if err != nil && ctx.Err() == nil {
			// counted apart from fetch errors, which a good fetch round resets: a wait
			// that keeps failing must back off, not spin
			waitErrs++
			w.log.Warn("waiting for work failed; retrying", "err", err, "in", backoff(waitErrs))
			sleepCtx(ctx, backoff(waitErrs))
		} else if err == nil {
			waitErrs = 0
		}
	}
}

// waitIdle registers the worker as idle (so a producer may hand it a job directly),
// blocks until work arrives, and starts a handed-off job at once. It reports whether
// a job was handed off (the queue was empty then, so the next fetch can be skipped)
// and which queue's wake-up token ended the wait. gen is the freed-slot count seen
// before the fetch round that found nothing.
//
// The worker listens only to the queues it has room for: a queue at its own cap is
// left to other workers, and a slot freed on it pokes this worker awake.
func (w *Worker) waitIdle(ctx context.Context, blocking redis.UniversalClient, gen uint64) (handedOff bool, wokeFor string, err error) {
	waitCtx := ctx
	if w.isolate {
		// a failing queue that answers again ends this wait, so that the next one
		// listens to it; registered before the queues are chosen, so none is missed
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithCancel(ctx)
		w.setInterrupt(cancel)
		defer func() { w.setInterrupt(nil); cancel() }()
	}
	queues := w.healthy(w.idleQueues())
	w.idleBlocked.Store(true) // before anything shows this worker idle: see freeSlot
	defer w.idleBlocked.Store(false)
	if w.freed.Load() != gen {
		return false, "", nil // a slot freed since that round (a capped queue may have room): fetch again
	}
	w.mu.Lock()
	full := w.free <= 0 // a late fetch took the slots this round saw free (cluster)
	w.mu.Unlock()
	if full {
		return false, "", nil // waitFree waits for a slot; no hand-off may come meanwhile
	}
	wake, err := w.store.WaitForWork(waitCtx, blocking, store.WaitFor{Ready: queues, Wake: queues, Worker: w.cfg.ID,
		Timeout: w.cfg.IdleBlock, IdleUntil: w.store.Now().Add(w.cfg.IdleBlock + 2*time.Second), Lease: w.cfg.Lease,
		NodeDeadline: w.cfg.NodeDeadline})
	if len(wake.Failed) > 0 {
		for q, ferr := range wake.Failed {
			w.queueFailed(q, ferr)
		}
		queues = slices.DeleteFunc(slices.Clone(queues), func(q string) bool { return wake.Failed[q] != nil })
	}
	if err == nil && wake.HandOff != nil {
		w.startHandOff(wake.Queue, wake, queues)
		return true, "", nil
	}
	if ctx.Err() == nil && waitCtx.Err() != nil {
		err = nil // a failing queue came back: fetch again, with it
	}
	if ctx.Err() != nil {
		w.unmarkIdle(ctx, queues) // stopping: no hand-off may come to this worker any more
	} else {
		go w.unmarkIdle(ctx, queues) // off the pickup path: a stale entry only delays a later hand-off
	}
	return false, wake.Queue, err
}

// unmarkIdle removes the worker's idle marks on queues, best effort, within 5 s.
func (w *Worker) unmarkIdle(ctx context.Context, queues []string) {
	if len(queues) == 0 {
		return
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = w.store.UnmarkIdle(uctx, queues, w.cfg.ID, w.cfg.Lease)
}

// nudge leaves a wake-up token on queue, in the background.
func (w *Worker) nudge(queue string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.store.Nudge(ctx, queue)
	}()
}

// idleQueues are the queues this worker may take a hand-off from now: the ones
// under their own concurrency cap.
func (w *Worker) idleQueues() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, q := range w.cfg.Queues {
		if q.Concurrency == 0 || w.perQueue[q.Name] < q.Concurrency {
			out = append(out, q.Name)
		}
	}
	return out
}

// waitFree blocks until at least one slot is free and returns how many are (0 once
// ctx is done).
func (w *Worker) waitFree(ctx context.Context) int {
	for {
		w.mu.Lock()
		free := w.free
		w.mu.Unlock()
		if free > 0 && free < w.cfg.BatchSize {
			// let jobs that are just finishing free their slots too, so the next fetch
			// takes a batch instead of one job (a yield, not a wait)
			runtime.Gosched()
			w.mu.Lock()
			free = w.free
			w.mu.Unlock()
		}
		if free > 0 {
			return free
		}
		select {
		case <-ctx.Done():
			return 0
		case <-w.slotFreed:
		}
	}
}

// fetchRound fetches from the queues in this round's order until the free slots are
// used or every queue has been tried; it returns how many jobs it started and which
// queues it asked. It fails only when every queue it asked failed: on a Redis Cluster
// a failing queue is left out of later rounds for a while (see healthy).
func (w *Worker) fetchRound(ctx context.Context, free int) (int, map[string]bool, error) {
	started, failed := 0, 0
	tried := map[string]bool{}
	var firstErr error
	var skip map[string]bool // failing queues, on a Redis Cluster
	if w.isolate && w.health.nSick.Load() > 0 {
		skip = map[string]bool{}
		for _, q := range w.queueNames() {
			skip[q] = true
		}
		for _, q := range w.healthy(w.queueNames()) {
			delete(skip, q)
		}
	}
	for _, qi := range w.order() {
		q := w.cfg.Queues[qi]
		if skip[q.Name] {
			continue
		}
		n := min(free-started, w.cfg.BatchSize)
		if q.Concurrency > 0 {
			w.mu.Lock()
			n = min(n, q.Concurrency-w.perQueue[q.Name])
			w.mu.Unlock()
		}
		if n <= 0 {
			continue
		}
		tried[q.Name] = true
		if w.isolate {
			k, pending, err := w.fetchApart(ctx, q.Name, n)
			switch {
			case pending || errors.Is(err, store.ErrPaused):
			case err != nil:
				failed++
				if firstErr == nil {
					firstErr = err
				}
			default:
				started += k
			}
			if started >= free {
				break
			}
			continue
		}
		got, err := w.store.Fetch(ctx, q.Name, w.cfg.ID, n, w.cfg.Lease)
		if errors.Is(err, store.ErrPaused) {
			continue
		}
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, f := range got {
			w.startJob(q.Name, f, nil)
		}
		started += len(got)
		if started >= free {
			break
		}
	}
	if started == 0 && failed > 0 && failed == len(tried) {
		return 0, tried, firstErr
	}
	return started, tried, nil
}

// order returns the queue indexes to try this round: the configured order when
// strict, else a weighted random order (each queue's chance to come first is its
// share of the total weight).
func (w *Worker) order() []int {
	n := len(w.cfg.Queues)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	if w.cfg.Strict || n == 1 {
		return idx
	}
	total := 0
	for _, q := range w.cfg.Queues {
		total += q.Weight
	}
	for i := 0; i < n-1; i++ {
		r := rand.IntN(total)
		for j := i; j < n; j++ {
			r -= w.cfg.Queues[idx[j]].Weight
			if r < 0 {
				idx[i], idx[j] = idx[j], idx[i]
				break
			}
		}
		total -= w.cfg.Queues[idx[i]].Weight
	}
	return idx
}
