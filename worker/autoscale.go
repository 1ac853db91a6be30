package worker

import (
	"context"
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"
)

// Autoscale lets a worker vary its job slots between Min and Max as its work asks
// (Celery's --autoscale). The zero value turns it off: the worker keeps Concurrency
// slots.
//
// Every second the worker applies one rule (docs/limits.md, "Autoscale"): one slot
// more when its last fetch took a job for every free slot (work waits) and its jobs'
// median run time holds; a quarter fewer when the median run time doubled, the error
// rate doubled, or after 10 seconds in which some slot stayed idle. Growing lets the
// fetch loop take more jobs at once; shrinking only lowers the cap on new fetches and
// never touches a running job.
type Autoscale struct {
	// Min is the fewest slots, and the count the worker starts with: at least 1.
	Min int
	// Max is the most slots: at least Min, at most MaxConcurrency. Config.Concurrency,
	// when set, must equal it (0 means Max).
	Max int
}

func (a Autoscale) on() bool { return a != Autoscale{} }

func (a Autoscale) validate(concurrency int) error {
	switch {
	case !a.on():
		return nil
	case a.Min < 1:
		return fmt.Errorf("worker: Autoscale.Min %d is below 1 (the zero Autoscale turns autoscaling off)", a.Min)
	case a.Min > a.Max:
		return fmt.Errorf("worker: Autoscale.Min %d > Autoscale.Max %d", a.Min, a.Max)
	case a.Max > MaxConcurrency:
		return fmt.Errorf("worker: Autoscale.Max %d is over MaxConcurrency (%d)", a.Max, MaxConcurrency)
	case concurrency != 0 && concurrency != a.Max:
		return fmt.Errorf("worker: Concurrency %d differs from Autoscale.Max %d: with Autoscale on, Concurrency is the ceiling (leave it 0)",
			concurrency, a.Max)
	}
	return nil
}

// SlotsObserver is told a worker's job slots when Config.Observer implements it too:
// once at Start, at every change autoscaling makes, and 0 at Stop. Calls come from
// one goroutine at a time per worker; they must return quickly. Package
// worker/prommetrics implements it with the chronoq_worker_slots gauge.
type SlotsObserver interface {
	ObserveSlots(worker string, slots int)
}

// The rule's constants (docs/limits.md states the rule with them).
const (
	scaleEvery = time.Second // how often the rule runs
	// growWithin: a slot is added only while the last window's median run time is
	// within this factor of the best since the last latency cut
	growWithin = 1.5
	// shrinkPast: past this factor of the best the slots are cut
	shrinkPast = 2.0
	// idleTicks: rounds in a row with a slot idle throughout before the slots are cut
	idleTicks = 10
	// windowAttempts: a window of run times is judged once it holds this many decided
	// attempts (it spans several rounds when jobs are slow): fewer say too little
	windowAttempts = 8
	// runFloor: run times below it count as it: below a millisecond, a change in the
	// median is the scheduler's noise, not load
	runFloor = time.Millisecond
	// errFloor and errMin: the error rate "doubled" when it is over twice the recent
	// rate, taken as at least errFloor, with at least errMin failures in the window: a
	// stray failure of a clean load is no sign of overload
	errFloor = 0.05
	errMin   = 3
	// errAlpha weighs each window in the recent error rate (an EWMA)
	errAlpha = 0.25
)

// scaleTick is what one round of the rule sees.
type scaleTick struct {
	// Filled: the last fetch took a job for every free slot, so work waits.
	Filled bool
	// Idle: some slot stayed free all round long (no fetch filled the slots, and one is
	// free now).
	Idle bool
	// Busy is the jobs running now.
	Busy int
	// Window is the window of decided attempts closed this round (Attempts 0: none).
	Window runWindow
}

// runWindow is a closed window of decided attempts.
type runWindow struct {
	Attempts int           // attempts decided
	Errors   int           // of which failed (retried or failed for good)
	P50      time.Duration // median run time of the ones whose handler returned (0: none)
}

// scaleRule is the autoscaling rule: pure, fed one round at a time, so a table of
// rounds tests it without a clock.
type scaleRule struct {
	min, max int
	best     time.Duration // lowest window median since the last latency cut (0: none)
	last     time.Duration // the last window's median (0: none)
	// waitWindow: slots were cut for latency; grow again only once a window closed
	// since, so that one slow window does not swing the size down and up again
	waitWindow bool
	errRate    float64 // recent error rate (EWMA over windows)
	idle       int     // rounds in a row with a slot idle throughout
}

func newScaleRule(a Autoscale) scaleRule { return scaleRule{min: a.Min, max: a.Max} }

// next returns the slot count after one round at size, and why it changed ("" when
// it did not).
func (r *scaleRule) next(size int, t scaleTick) (int, string) {
	w := t.Window
	var cut string
	if w.Attempts > 0 {
		p50 := max(w.P50, runFloor)
		rate := float64(w.Errors) / float64(w.Attempts)
		switch {
		case w.P50 > 0 && r.best > 0 && float64(p50) > shrinkPast*float64(r.best):
			cut = fmt.Sprintf("median run time %s past %.0f× the best %s", w.P50.Round(time.Microsecond), shrinkPast, r.best)
			// a new best from the windows after the cut: the work itself may have
			// changed, and a stale best would cut again and again
			r.best, r.last, r.waitWindow = 0, 0, true
		case w.P50 > 0:
			r.last, r.waitWindow = p50, false
			if r.best == 0 || p50 < r.best {
				r.best = p50
			}
		}
		if cut == "" && w.Errors >= errMin && rate > 2*max(r.errRate, errFloor) {
			cut = fmt.Sprintf("error rate %.0f%% over twice the recent %.0f%%", 100*rate, 100*r.errRate)
		}
		r.errRate += errAlpha * (rate - r.errRate)
	}
	if cut != "" {
		r.idle = 0
		if n := r.clamp(size - max(1, size/4)); n < size {
			return n, cut
		}
		return size, ""
	}
	if t.Idle {
		r.idle++
		if r.idle < idleTicks {
			return r.clamp(size), ""
		}
		r.idle = 0
		// only idle slots go: at least one stays free for the work that comes next
		n := r.clamp(max(size-max(1, size/4), t.Busy+1))
		if n < size {
			return n, fmt.Sprintf("a slot idle for %d rounds", idleTicks)
		}
		return size, ""
	}
	r.idle = 0
	if t.Filled && !r.waitWindow && (r.best == 0 || float64(r.last) <= growWithin*float64(r.best)) && size < r.max {
		return size + 1, "work waits and run times hold"
	}
	return r.clamp(size), ""
}

func (r *scaleRule) clamp(n int) int { return min(max(n, r.min), r.max) }

// runBuckets: run times in buckets of a quarter octave of microseconds (each at most
// a quarter wider than its lower bound), from 1 µs to past 12 days.
const runBuckets = 42 * 4

// scaler is the autoscaling state shared by the fetch loop, the executors and the
// rule's loop. The per-job cost is three atomic adds (Observe); the per-fetch cost
// two atomic stores (fetched).
type scaler struct {
	rule       scaleRule // the scale loop's alone
	every      time.Duration
	lastFilled atomic.Bool // the last fetch round took a job for every free slot
	anyFilled  atomic.Bool // some fetch round since the last rule round did
	attempts   atomic.Int64
	errors     atomic.Int64
	runs       [runBuckets]atomic.Uint32
}

func newScaler(a Autoscale) *scaler { return &scaler{rule: newScaleRule(a), every: scaleEvery} }

// fetched records a fetch round's result: filled says it took a job for every slot
// that was free.
func (s *scaler) fetched(filled bool) {
	s.lastFilled.Store(filled)
	if filled {
		s.anyFilled.Store(true)
	}
}

// Observe records a decided attempt in the open window (the worker tees its
// observations here: see New).
func (s *scaler) Observe(a Attempt) {
	if a.Ran > 0 {
		s.runs[runBucket(a.Ran)].Add(1)
	}
	if a.Outcome == OutcomeRetried || a.Outcome == OutcomeFailed {
		s.errors.Add(1)
	}
	s.attempts.Add(1)
}

// window closes the open window if it holds enough attempts. An attempt recorded
// while it closes may land in either window: a window is a sample, not an account.
func (s *scaler) window() runWindow {
	if s.attempts.Load() < windowAttempts {
		return runWindow{}
	}
	w := runWindow{Attempts: int(s.attempts.Swap(0)), Errors: int(s.errors.Swap(0))}
	var counts [runBuckets]uint32
	total := 0
	for i := range s.runs {
		counts[i] = s.runs[i].Swap(0)
		total += int(counts[i])
	}
	for i, seen := 0, 0; i < runBuckets && total > 0; i++ {
		if seen += int(counts[i]); 2*seen >= total {
			w.P50 = bucketMid(i)
			break
		}
	}
	return w
}

// runBucket is d's bucket: the octave of d in µs and the next two bits.
func runBucket(d time.Duration) int {
	v := uint64(d/time.Microsecond) + 1
	e := bits.Len64(v) - 1
	var m uint64
	if e >= 2 {
		m = v >> (e - 2) & 3
	} else {
		m = v << (2 - e) & 3
	}
	return min(e*4+int(m), runBuckets-1)
}

// bucketMid is the middle of bucket i.
func bucketMid(i int) time.Duration {
	e, m := i/4, i%4
	lo := float64(uint64(4+m)<<e) / 4 // in µs, +1 (see runBucket)
	hi := float64(uint64(5+m)<<e) / 4
	return time.Duration((lo+hi)/2-1) * time.Microsecond
}

// scaleLoop runs the rule every round until the worker stops.
func (w *Worker) scaleLoop(ctx context.Context) {
	defer w.bg.Done()
	t := time.NewTicker(w.scaler.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.scaleRound()
		}
	}
}

// scaleRound runs the rule once and applies what it decides.
func (w *Worker) scaleRound() {
	s := w.scaler
	t := scaleTick{Filled: s.lastFilled.Load(), Window: s.window()}
	filled := s.anyFilled.Swap(false)
	w.mu.Lock()
	size, free := w.slots, w.free
	t.Busy = size - free
	w.mu.Unlock()
	t.Idle = !filled && free > 0
	if n, why := s.rule.next(size, t); n != size {
		w.log.Debug("autoscale", "slots", n, "was", size, "why", why)
		w.resize(n)
	}
}

// resize sets the slot count to n. Growing frees the new slots at once and wakes
// the fetch loop, as a job's end does; shrinking lowers the count of free slots,
// below zero while more jobs run than n: they run on, and the fetch loop takes no
// job until they are fewer.
func (w *Worker) resize(n int) {
	w.mu.Lock()
	d := n - w.slots
	w.slots = n
	w.free += d
	w.mu.Unlock()
	if d > 0 {
		w.freed.Add(1) // see waitIdle
		select {
		case w.slotFreed <- struct{}{}:
		default:
		}
	}
	w.observeSlots(n)
}

// Slots is the worker's current count of job slots: Config.Concurrency, or with
// Autoscale on the size the rule chose, between Min and Max.
func (w *Worker) Slots() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.slots
}

func (w *Worker) observeSlots(n int) {
	if w.slotsObs != nil {
		w.slotsObs.ObserveSlots(w.cfg.ID, n)
	}
}

// observers tees a worker's observations to two observers.
type observers struct{ a, b Observer }

func (o observers) Observe(a Attempt) {
	o.a.Observe(a)
	o.b.Observe(a)
}
