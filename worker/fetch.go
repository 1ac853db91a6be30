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
	blocking, closeBlocking := w.store.BlockingClient(w.cfg.IdleBlock + 2*time.Second)
	f := &fetcher{w: w, ctx: ctx, blocking: blocking, stopped: make(chan struct{})}
	go func() { // Stop interrupts an idle wait by closing its connection
		select {
		case <-ctx.Done():
			if w.store.IsCluster() { // the shared cluster client cannot be closed: poke
				pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = w.store.Poke(pctx, w.cfg.ID)
				cancel()
			}
		case <-f.stopped:
		}
		closeBlocking()
	}()
	f.loop()
}

// fetcher is the fetch loop's state. The loop may move from one goroutine to another:
// a job handed off while the worker was idle is run by the goroutine its arrival woke,
// at once, and the loop goes on in a new goroutine (leader and follower), so the job
// waits for no other thread to wake — on a small machine that wake-up was a third of
// an idle worker's enqueue-to-start time (docs/benchmarks.md, W2).
type fetcher struct {
	w        *Worker
	ctx      context.Context
	blocking redis.UniversalClient
	stopped  chan struct{} // closed when the loop ends
	errs     int           // fetch rounds failed in a row
	waitErrs int           // idle waits failed in a row
	// handedOff: the last wait ended with a hand-off, so the queue was empty: the next
	// round skips the fetch
	handedOff bool
	wokeFor   string // the queue whose wake-up token ended the last idle wait
}

// loop runs the fetch loop until ctx ends, or until this goroutine takes a handed-off
// job to run (the loop then goes on in another).
func (f *fetcher) loop() {
	w, ctx := f.w, f.ctx
	for ctx.Err() == nil {
		free := w.waitFree(ctx)
		if free == 0 {
			break
		}
		var got int
		var err error
		gen := w.freed.Load()
		if !f.handedOff {
			var tried map[string]bool
			got, tried, err = w.fetchRound(ctx, free)
			if w.scaler != nil {
				w.scaler.fetched(err == nil && got >= free)
			}
			if f.wokeFor != "" && !tried[f.wokeFor] {
				// the token was for a queue this round had no slot left for: pass it on
				// to another idle worker instead of leaving that queue's jobs waiting
				w.nudge(f.wokeFor)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			f.errs++
			w.log.Warn("fetch failed; retrying", "err", err, "in", backoff(f.errs))
			sleepCtx(ctx, backoff(f.errs))
			continue
		}
		f.errs = 0
		if got > 0 {
			continue
		}
		var inline *execution
		f.handedOff, f.wokeFor, inline, err = w.waitIdle(ctx, f.blocking, gen)
		if inline != nil {
			go f.loop() // w.loops still counts the loop: it has moved, not ended
			w.runners.loop(inline.run)
			return
		}
		if err != nil && ctx.Err() == nil {
			// counted apart from fetch errors, which a good fetch round resets: a wait
			// that keeps failing must back off, not spin
			f.waitErrs++
			w.log.Warn("waiting for work failed; retrying", "err", err, "in", backoff(f.waitErrs))
			sleepCtx(ctx, backoff(f.waitErrs))
		} else if err == nil {
			f.waitErrs = 0
		}
	}
	close(f.stopped)
	w.loops.Done()
}

// waitIdle registers the worker as idle (so a producer may hand it a job directly),
// blocks until work arrives, and starts a handed-off job at once. It reports whether
// a job was handed off (the queue was empty then, so the next fetch can be skipped),
// the handed-off execution the caller is to run itself (see fetcher), and which
// queue's wake-up token ended the wait. gen is the freed-slot count seen
// before the fetch round that found nothing.
//
// The worker listens only to the queues it has room for: a queue at its own cap is
// left to other workers, and a slot freed on it pokes this worker awake.
func (w *Worker) waitIdle(ctx context.Context, blocking redis.UniversalClient, gen uint64) (handedOff bool, wokeFor string, inline *execution, err error) {
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
		return false, "", nil, nil // a slot freed since that round (a capped queue may have room): fetch again
	}
	w.mu.Lock()
	full := w.free <= 0 // a late fetch took the slots this round saw free (cluster)
	w.mu.Unlock()
	if full {
		return false, "", nil, nil // waitFree waits for a slot; no hand-off may come meanwhile
	}
	timeout := w.cfg.IdleBlock
	if tok := w.tokenIn; tok > 0 {
		// work a rate limit held back: sleep until its token, not a poll
		short := shortTokenWait
		if w.store.IsCluster() {
			short = clusterTokenWait
		}
		if tok <= short {
			sleepCtx(ctx, tok)
			return false, "", nil, nil
		}
		timeout = min(timeout, tok-tokenTick)
		if w.store.IsCluster() {
			timeout = timeout.Truncate(time.Second)
		}
	}
	wake, err := w.store.WaitForWork(waitCtx, blocking, store.WaitFor{Ready: queues, Wake: queues, Worker: w.cfg.ID,
		Timeout: timeout, IdleUntil: w.store.Now().Add(timeout + 2*time.Second), Lease: w.cfg.Lease,
		NodeDeadline: w.cfg.NodeDeadline})
	if len(wake.Failed) > 0 {
		for q, ferr := range wake.Failed {
			w.queueFailed(q, ferr)
		}
		queues = slices.DeleteFunc(slices.Clone(queues), func(q string) bool { return wake.Failed[q] != nil })
	}
	if err == nil && wake.HandOff != nil {
		return true, "", w.startHandOff(wake.Queue, wake, queues), nil
	}
	if ctx.Err() == nil && waitCtx.Err() != nil {
		err = nil // a failing queue came back: fetch again, with it
	}
	if ctx.Err() != nil {
		w.unmarkIdle(ctx, queues) // stopping: no hand-off may come to this worker any more
	} else {
		go w.unmarkIdle(ctx, queues) // off the pickup path: a stale entry only delays a later hand-off
	}
	return false, wake.Queue, nil, err
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
	w.tokenIn = 0
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
		b, err := w.store.FetchBatch(ctx, q.Name, w.cfg.ID, n, w.cfg.Lease)
		got := b.Jobs
		w.noteToken(b.TokenIn)
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

// noteToken keeps the soonest time, this round, at which work a rate limit held back
// gets its next token (0: none was held back).
func (w *Worker) noteToken(d time.Duration) {
	if d > 0 && (w.tokenIn == 0 || d < w.tokenIn) {
		w.tokenIn = d
	}
}

// Waiting for a rate limit's token: Redis times out a blocking wait only on its own
// tick (10 per second by default), far too coarse for a token due in 5 ms. A token due
// within shortTokenWait is waited for with a timer; a later one with a blocking wait
// (so that new work still wakes the worker) that ends tokenTick early, then the timer.
// On a Redis Cluster the blocking wait counts whole seconds (go-redis rounds up), so
// a token within clusterTokenWait is waited for with the timer there.
const (
	shortTokenWait   = 150 * time.Millisecond
	tokenTick        = 100 * time.Millisecond
	clusterTokenWait = time.Second + tokenTick
)

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
