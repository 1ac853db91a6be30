package worker

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
	"github.com/redis/go-redis/v9"
)

// renewLoop extends the leases of held jobs every third of a lease; a job this worker
// no longer holds (taken back after a long pause) has its context canceled.
func (w *Worker) renewLoop(ctx context.Context) {
	defer w.bg.Done()
	t := time.NewTicker(w.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.renewNow: // the stop channel was (re)subscribed: notices may be lost
		}
		w.mu.Lock()
		byQueue := map[string][]store.Lease{}
		for _, r := range w.held {
			if !r.unclaimed && !r.lost {
				byQueue[r.queue] = append(byQueue[r.queue], r.lease())
			}
		}
		w.mu.Unlock()
		queues := make([]string, 0, len(byQueue))
		for q := range byQueue {
			queues = append(queues, q)
		}
		w.forEachQueue(ctx, "renew", queues, func(ctx context.Context, q string) {
			rctx, cancel := context.WithTimeout(ctx, w.cfg.Lease/3)
			lost, stop, err := w.store.RenewLeases(rctx, q, w.cfg.ID, byQueue[q], w.cfg.Lease)
			cancel()
			if err != nil {
				w.log.Warn("lease renewal failed", "queue", q, "err", err)
				return
			}
			w.mu.Lock()
			for _, l := range lost {
				if r, ok := w.held[keyOf(l)]; ok && !r.done && !r.lost {
					r.lost = true
					w.log.Warn("lost the lease of a running job; canceling it", "job", l.ID, "queue", q)
					r.cancel(job.ErrLeaseExpired)
				}
			}
			w.mu.Unlock()
			for _, l := range stop { // a stop whose notice was missed
				w.stopJob(q, l.ID)
			}
		})
	}
}

// reapLoop takes back jobs whose lease expired (their worker died), for every served
// queue, waking at the earliest lease deadline (or one lease from now).
func (w *Worker) reapLoop(ctx context.Context) {
	defer w.bg.Done()
	reason := job.ErrLeaseExpired.Error()
	var lastTrim, lastRecount time.Time
	for {
		if time.Since(lastTrim) >= trimInterval {
			lastTrim = time.Now()
			w.trimEnded(ctx)
		}
		w.mu.Lock()
		retry := w.undeclared
		w.undeclared = nil
		w.mu.Unlock()
		if len(retry) > 0 { // declarations a Redis error kept from being stored at Start
			w.declareLimits(ctx, retry)
		}
		if time.Since(lastRecount) >= recountInterval {
			lastRecount = time.Now()
			w.recountLimits(ctx)
		}
		// deadlines are on Redis' clock
		next := w.store.RedisNow().Add(w.cfg.Lease)
		var mu sync.Mutex
		w.forEachQueue(ctx, "reap", w.queueNames(), func(ctx context.Context, q string) {
			for {
				n, deadline, err := w.store.ReclaimExpired(ctx, q, reason)
				if err != nil {
					if ctx.Err() == nil {
						w.log.Warn("lease reaper failed", "queue", q, "err", err)
					}
					return
				}
				if n > 0 {
					w.log.Info("took back jobs of a lost worker", "queue", q, "jobs", n)
				}
				mu.Lock()
				if !deadline.IsZero() && deadline.Before(next) {
					next = deadline
				}
				mu.Unlock()
				if n < 200 {
					return
				}
			}
		})
		mu.Lock() // a call still out on a stalled node may yet write next
		wakeAt := next
		mu.Unlock()
		// a small margin so that a renewal racing the deadline wins
		wait := max(wakeAt.Sub(w.store.RedisNow())+50*time.Millisecond, 50*time.Millisecond)
		if !sleepCtx(ctx, wait) {
			return
		}
	}
}

// trimInterval is how often a worker trims ended jobs past their keeping; the reaper
// loop, which wakes at least once a lease, does it.
const trimInterval = 10 * time.Second

// recountInterval is how often a worker rebuilds the running counts of its queues'
// limits from the leases held (store.RecountLimits): the repair for a count that an
// owner entry deleted by hand left behind, which would otherwise hold a cap full.
const recountInterval = 30 * time.Second

func (w *Worker) recountLimits(ctx context.Context) {
	w.forEachQueue(ctx, "recount", w.queueNames(), func(ctx context.Context, q string) {
		has, err := w.store.LimitsInUse(ctx, q)
		if err == nil && has {
			err = w.store.RecountLimits(ctx, q)
		}
		if err != nil && ctx.Err() == nil {
			w.log.Debug("recounting limits failed", "queue", q, "err", err)
		}
	})
}

// trimEnded drops succeeded jobs past their retention and failed jobs past their age
// on every served queue, so an idle queue honours retention too.
func (w *Worker) trimEnded(ctx context.Context) {
	w.forEachQueue(ctx, "trim", w.queueNames(), func(ctx context.Context, q string) {
		for range 20 { // a long backlog of expired jobs goes over a few rounds
			n, err := w.store.Trim(ctx, q)
			if err != nil {
				if ctx.Err() == nil {
					w.log.Debug("trim failed", "queue", q, "err", err)
				}
				return
			}
			if n < 500 { // neither set had a full call's worth left
				return
			}
		}
	})
}

// promoteLoop moves due scheduled jobs (delays and retries) to pending. It sleeps until
// the earliest due time, or until a producer schedules an earlier job (a pub/sub
// notice), never on a fixed poll; an hour at most, against a lost notice.
func (w *Worker) promoteLoop(ctx context.Context) {
	defer w.bg.Done()
	channels := make([]string, 0, 2*len(w.cfg.Queues))
	stopQueue := map[string]string{} // stop channel -> its queue
	for _, q := range w.cfg.Queues {
		k := w.store.Keys(q.Name)
		channels = append(channels, k.SchedChannel, k.StopChannel)
		stopQueue[k.StopChannel] = q.Name
	}
	// one subscription for both: schedule notices wake the promoter, stop requests go
	// to the running job (renewLoop catches any missed while reconnecting). A
	// (re)subscription confirmation wakes the promoter too: notices published while the
	// connection was down are lost, and the timer may be an hour away
	ps := w.store.Redis().Subscribe(ctx, channels...)
	defer ps.Close()
	notices := ps.ChannelWithSubscriptions()
	errs := 0
	for {
		next := w.store.Now().Add(time.Hour)
		failed := false
		var mu sync.Mutex
		w.forEachQueue(ctx, "promote", w.queueNames(), func(ctx context.Context, q string) {
			for {
				n, due, err := w.store.Promote(ctx, q, 1000)
				mu.Lock()
				if err != nil {
					failed = true
				} else if !due.IsZero() && due.Before(next) {
					next = due
				}
				mu.Unlock()
				if err != nil {
					if ctx.Err() == nil {
						w.log.Warn("promoter failed", "queue", q, "err", err)
					}
					return
				}
				if n < 1000 {
					return
				}
			}
		})
		mu.Lock() // a call still out on a stalled node may yet write these
		wakeAt, anyFailed := next, failed
		mu.Unlock()
		if anyFailed {
			// retry the failing queues after a backoff, and still wake for the others'
			// due jobs: one queue's trouble must not hold the others' promotions
			errs++
			wakeAt = minTime(wakeAt, w.store.Now().Add(backoff(errs)))
		} else {
			errs = 0
		}
		t := time.NewTimer(max(wakeAt.Sub(w.store.Now()), 0))
	wait:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case n := <-notices:
				switch m := n.(type) {
				case *redis.Message:
					if q, ok := stopQueue[m.Channel]; ok {
						w.stopJob(q, m.Payload)
						continue wait
					}
				case *redis.Subscription:
					if m.Count < len(channels) {
						continue wait // one promotion per (re)subscription, at its last channel
					}
					// stop notices published before it reached no one: renewal reads them
					select {
					case w.renewNow <- struct{}{}:
					default:
					}
				}
			case <-t.C:
			}
			break
		}
		t.Stop()
	}
}

// heartbeatLoop publishes the worker's state until it stops.
func (w *Worker) heartbeatLoop(ctx context.Context) {
	defer w.bg.Done()
	for {
		hctx, cancel := context.WithTimeout(ctx, w.cfg.HeartbeatInterval)
		if err := w.store.Heartbeat(hctx, w.info(), 3*w.cfg.HeartbeatInterval); err != nil && !errors.Is(err, context.Canceled) {
			w.log.Warn("heartbeat failed", "err", err)
		}
		cancel()
		if !sleepCtx(ctx, w.cfg.HeartbeatInterval) {
			return
		}
	}
}

func (w *Worker) info() store.WorkerInfo {
	host, pid := hostPID()
	info := store.WorkerInfo{ID: w.cfg.ID, Host: host, PID: pid, Queues: w.queueNames(), Strict: w.cfg.Strict,
		Concurrency: w.cfg.Concurrency, Started: w.startedAt, Weights: map[string]int{}}
	for _, q := range w.cfg.Queues {
		info.Weights[q.Name] = q.Weight
	}
	w.mu.Lock()
	info.Slots = w.slots
	for _, r := range w.held {
		if !r.done {
			info.Running = append(info.Running, store.RunningJob{ID: r.j.ID, Queue: r.queue, Task: r.j.Task, Started: r.started})
		}
	}
	w.mu.Unlock()
	return info
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
