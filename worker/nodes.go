package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronoq/chronoq/internal/store"
)

// On a Redis Cluster each queue lives on one master (its keys share one hash tag). A
// worker serving queues of several masters keeps one master's trouble with that
// master's queues:
//
//   - the fetch loop's calls to a queue's node (fetch, idle mark, the wait, a claim)
//     wait at most Config.NodeDeadline; a call still out then is left to finish in the
//     background, and what it brings back late is handed back;
//   - a queue whose node failed or was too slow is left out of fetches and idle waits,
//     and probed every probeEvery until its node answers; a queue whose own calls
//     fail (a damaged key, say) is left out for a growing cool-down instead;
//   - acknowledgements, renewals, the reaper, the promoter and hand-backs work on each
//     queue apart (see forEachQueue), so a stalled node never holds another queue's.
//
// On one server none of this runs: every queue shares the node's fate, and the calls
// are made as they are.

// probeEvery is how often the worker asks a failing queue's node whether it is back.
const probeEvery = 100 * time.Millisecond

// probeTimeout bounds one probe (go-redis may take longer to give up on a stalled
// node: the probe then answers as soon as the node does).
const probeTimeout = 2 * time.Second

// health is what the worker knows of its queues' nodes (on a Redis Cluster).
type health struct {
	mu        sync.Mutex
	sick      map[string]*sickness
	nSick     atomic.Int32 // len(sick), read without the lock on the hot path
	closed    bool         // the worker is stopping: no new probes
	probes    sync.WaitGroup
	interrupt context.CancelFunc // ends the idle wait under way (a queue came back)
	inflight  map[string]bool    // per-queue background calls still out ("loop\x00queue")
}

// sickness is one failing queue.
type sickness struct {
	since   time.Time
	until   time.Time // a queue error's cool-down: skipped until then (zero: probed)
	fails   int
	probing bool
}

// healthy returns the queues of qs that may be called now. On one server, all.
func (w *Worker) healthy(qs []string) []string {
	if !w.isolate || w.health.nSick.Load() == 0 {
		return qs
	}
	now := time.Now()
	w.health.mu.Lock()
	defer w.health.mu.Unlock()
	out := make([]string, 0, len(qs))
	for _, q := range qs {
		if s := w.health.sick[q]; s == nil || (!s.probing && now.After(s.until)) {
			out = append(out, q) // well, or a cool-down that ended: on trial
		}
	}
	return out
}

// queueFailed records that a call to queue failed with err. A node error (down,
// stalled, not serving) leaves the queue out until a probe gets an answer; any other
// error leaves it out for a cool-down that doubles with each failure in a row.
func (w *Worker) queueFailed(queue string, err error) {
	if !w.isolate || err == nil || errors.Is(err, context.Canceled) {
		return
	}
	h := &w.health
	node := store.IsNodeError(err)
	h.mu.Lock()
	s := h.sick[queue]
	first := s == nil
	if first {
		s = &sickness{since: time.Now()}
		h.sick[queue] = s
		h.nSick.Add(1)
	}
	s.fails++
	probe := false
	if node {
		if !s.probing && !h.closed {
			s.probing, probe = true, true
			h.probes.Add(1)
		}
	} else if !s.probing {
		s.until = time.Now().Add(backoff(s.fails))
	}
	h.mu.Unlock()
	switch {
	case first && node:
		w.log.Warn("a queue's Redis node fails; serving the other queues without it until it answers", "queue", queue, "err", err)
	case first:
		w.log.Warn("calls to a queue fail; skipping it for a while", "queue", queue, "err", err, "for", backoff(s.fails))
	default:
		w.log.Debug("a failing queue failed again", "queue", queue, "err", err)
	}
	if probe {
		go w.probe(queue)
	}
}

// queueServed records that a call to queue succeeded: a queue on trial after its
// cool-down is well again.
func (w *Worker) queueServed(queue string) {
	if !w.isolate || w.health.nSick.Load() == 0 {
		return
	}
	w.health.mu.Lock()
	s := w.health.sick[queue]
	if s == nil || s.probing {
		w.health.mu.Unlock()
		return
	}
	w.health.mu.Unlock()
	w.recovered(queue)
}

// probe asks queue's node, every probeEvery, for a write that changes nothing, until
// it answers; then the queue is served again.
func (w *Worker) probe(queue string) {
	defer w.health.probes.Done()
	ctx := w.bgCtx
	for {
		if !sleepCtx(ctx, probeEvery) {
			return
		}
		if w.probeOnce(ctx, queue) == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
	}
	// an idle mark sent before the trouble may have landed late: remove it before the
	// queue is served again (the next idle wait marks it anew)
	uctx, cancel := context.WithTimeout(ctx, probeTimeout)
	_ = w.store.UnmarkIdle(uctx, []string{queue}, w.cfg.ID, w.cfg.Lease)
	cancel()
	w.recovered(queue)
}

// probeOnce probes queue's node once. It returns when ctx ends even if the call has
// not: go-redis may take seconds to give up on a stalled node, and Stop waits for the
// probes.
func (w *Worker) probeOnce(ctx context.Context, queue string) error {
	done := make(chan error, 1)
	go func() {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		done <- w.store.Probe(pctx, queue)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recovered serves queue again, and ends the idle wait under way so that the next one
// listens to it.
func (w *Worker) recovered(queue string) {
	h := &w.health
	h.mu.Lock()
	s := h.sick[queue]
	if s == nil {
		h.mu.Unlock()
		return
	}
	delete(h.sick, queue)
	h.nSick.Add(-1)
	interrupt := h.interrupt
	h.mu.Unlock()
	w.log.Info("a failing queue answers again; serving it", "queue", queue, "after", time.Since(s.since).Round(time.Millisecond))
	if interrupt != nil {
		interrupt()
	}
}

// setInterrupt registers the function that ends the idle wait under way (nil: none).
func (w *Worker) setInterrupt(f context.CancelFunc) {
	w.health.mu.Lock()
	w.health.interrupt = f
	w.health.mu.Unlock()
}

// stopProbes waits for the probes to end (the worker's background context is done).
func (w *Worker) stopProbes() {
	w.health.mu.Lock()
	w.health.closed = true
	w.health.mu.Unlock()
	w.health.probes.Wait()
}

// fetchPatience is how long a fetch round on a Redis Cluster waits for one queue's
// fetch before it goes on to the next queue, leaving that fetch to finish on its own.
// A healthy node answers well within it; the next queue's jobs then do not wait for a
// node that may be stalled (NodeDeadline tells that later).
const fetchPatience = 5 * time.Millisecond

type fetchResult struct {
	got     []store.Fetched
	tokenIn time.Duration // Batch.TokenIn
	err     error
}

// fetchApart fetches up to n jobs of queue on a Redis Cluster. If the fetch is back
// within fetchPatience its jobs are returned for the caller to start. Otherwise it
// goes on in the background (pending is true): back within NodeDeadline, it starts
// what it brought in the slots free then and hands the rest back; later, the queue
// is marked failing and all it brings is handed back. It holds no slots meanwhile, so
// a stalled node never keeps the worker from other queues' jobs. A queue with such a
// fetch still out is not fetched again (pending, nothing asked).
func (w *Worker) fetchApart(ctx context.Context, queue string, n int) (started int, pending bool, err error) {
	w.mu.Lock()
	if w.fetching[queue] {
		w.mu.Unlock()
		return 0, true, nil
	}
	w.fetching[queue] = true
	w.mu.Unlock()
	done := make(chan fetchResult, 1)
	go func() {
		b, err := w.store.FetchBatch(ctx, queue, w.cfg.ID, n, w.cfg.Lease)
		done <- fetchResult{b.Jobs, b.TokenIn, err}
	}()
	t := time.NewTimer(fetchPatience)
	select {
	case r := <-done:
		t.Stop()
		w.fetched(queue)
		w.noteCall(ctx, queue, r.err)
		w.noteToken(r.tokenIn)
		return w.startFetched(queue, r.got), false, r.err
	case <-t.C:
	}
	w.loops.Add(1) // Stop waits for it (at most NodeDeadline): it may start jobs
	go w.settleFetch(ctx, queue, n, done)
	return 0, true, nil
}

// startFetched starts the jobs of queue a fetch brought in the slots free now (a late
// fetch may have taken some meanwhile: the worker never runs more than its
// concurrency) and hands the rest back. It returns how many it started.
func (w *Worker) startFetched(queue string, got []store.Fetched) int {
	k := w.takeSlots(queue, len(got))
	for _, f := range got[:k] {
		w.start(queue, f, nil, true)
	}
	w.handBackLate(queue, got[k:])
	return k
}

// fetched marks queue's fetch as back.
func (w *Worker) fetched(queue string) {
	w.mu.Lock()
	delete(w.fetching, queue)
	w.mu.Unlock()
}

// settleFetch ends a fetch that outlasted fetchPatience (see fetchApart).
func (w *Worker) settleFetch(ctx context.Context, queue string, n int, done <-chan fetchResult) {
	defer w.loops.Done()
	t := time.NewTimer(max(w.cfg.NodeDeadline-fetchPatience, 0))
	defer t.Stop()
	select {
	case r := <-done:
		w.fetched(queue) // before the interrupt: the next round may ask this queue again
		w.noteCall(ctx, queue, r.err)
		w.startFetched(queue, r.got)
		if len(r.got) == n {
			w.interruptWait() // more may wait there: the next round asks again
		}
	case <-t.C:
		w.fetched(queue)
		w.queueFailed(queue, store.ErrNodeSlow)
		go func() {
			if r := <-done; r.err == nil {
				w.handBackLate(queue, r.got)
			}
		}()
	}
}

// takeSlots takes up to k free slots for jobs of queue, within its own cap, and
// returns how many it took.
func (w *Worker) takeSlots(queue string, k int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	k = min(k, max(w.free, 0))
	for _, q := range w.cfg.Queues {
		if q.Name == queue && q.Concurrency > 0 {
			k = min(k, max(q.Concurrency-w.perQueue[queue], 0))
		}
	}
	w.free -= k
	w.perQueue[queue] += k
	return k
}

// giveBackSlot returns a slot takeSlots took for a job of queue that did not start.
func (w *Worker) giveBackSlot(queue string) {
	w.mu.Lock()
	w.free++
	w.perQueue[queue]--
	w.mu.Unlock()
	select {
	case w.slotFreed <- struct{}{}:
	default:
	}
}

// handBackLate returns jobs a fetch brought after the worker had moved on to pending.
func (w *Worker) handBackLate(queue string, got []store.Fetched) {
	if len(got) == 0 {
		return
	}
	leases := make([]store.Lease, len(got))
	for i, f := range got {
		leases[i] = f.Lease()
	}
	hctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	if _, err := w.store.HandBack(hctx, queue, w.cfg.ID, leases); err != nil {
		w.log.Warn("a late fetch could not hand its jobs back; they run after their lease", "queue", queue, "jobs", len(got), "err", err)
	}
}

// noteCall records how a call to queue's node went.
func (w *Worker) noteCall(ctx context.Context, queue string, err error) {
	switch {
	case err == nil:
		w.queueServed(queue)
	case ctx.Err() == nil && !errors.Is(err, store.ErrPaused):
		w.queueFailed(queue, err)
	}
}

// interruptWait ends the idle wait under way, if any.
func (w *Worker) interruptWait() {
	w.health.mu.Lock()
	f := w.health.interrupt
	w.health.mu.Unlock()
	if f != nil {
		f()
	}
}

// forEachQueue calls fn for each of queues. On one server it calls them in turn. On a
// Redis Cluster it calls them at once and waits for them, but for longer than
// loopWait: a call still out then goes on in the background, and the next round of
// loop skips its queue until it has returned. fn must be safe to call concurrently.
func (w *Worker) forEachQueue(ctx context.Context, loop string, queues []string, fn func(ctx context.Context, queue string)) {
	if !w.isolate || len(queues) == 1 && w.health.nSick.Load() == 0 {
		for _, q := range queues {
			fn(ctx, q)
		}
		return
	}
	var wg sync.WaitGroup
	for _, q := range queues {
		key := loop + "\x00" + q
		w.health.mu.Lock()
		busy := w.health.inflight[key]
		if !busy {
			w.health.inflight[key] = true
		}
		w.health.mu.Unlock()
		if busy {
			continue // its last call has not come back: its node is stalled
		}
		wg.Add(1)
		go func() {
			defer func() {
				w.health.mu.Lock()
				delete(w.health.inflight, key)
				w.health.mu.Unlock()
			}()
			defer wg.Done()
			fn(ctx, q)
		}()
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	t := time.NewTimer(loopWait)
	defer t.Stop()
	select {
	case <-all:
	case <-t.C:
	case <-ctx.Done():
	}
}

// loopWait is how long a background loop's round waits for its queues' calls on a
// Redis Cluster before going on without the ones still out.
const loopWait = time.Second
