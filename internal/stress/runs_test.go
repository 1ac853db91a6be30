package stress

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/worker"
)

// kind is what a handler does in one attempt.
type kind uint8

const (
	kQuick      kind = iota // returns its result after Ms, honouring its context
	kSlow                   // the same, for longer (often past a lease, sometimes past its timeout)
	kLong                   // the same, for seconds: what a lost lease must stop
	kStubborn               // works for Ms and returns its result even when its context ends
	kFail                   // returns an error: a retry
	kRetryAfter             // asks for a retry after Ms
	kSkip                   // fails for good (SkipRetry)
	kPanic                  // panics
	kOverrun                // waits for its context to end, then returns late (within the grace)
	kIgnore                 // sleeps past its timeout and the grace, never looking at its context
	nKinds
)

var kindNames = [nKinds]string{"quick", "slow", "long", "stubborn", "fail", "retry-after", "skip", "panic", "overrun", "ignore"}

func (k kind) String() string {
	if k < nKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// step is one attempt's behaviour.
type step struct {
	K  kind `msgpack:"k"`
	Ms int  `msgpack:"m"`
}

// plan is a job's payload: what each attempt does (attempts past the plan are quick).
type plan struct {
	Steps []step `msgpack:"s"`
}

func (p plan) at(attempt int) step {
	if attempt >= 1 && attempt <= len(p.Steps) {
		return p.Steps[attempt-1]
	}
	return step{K: kQuick}
}

// timeout is the job's timeout: short when an attempt outlives it on purpose, long
// enough for a long attempt, else drawn.
func (p plan) timeout(rng *rand.Rand) time.Duration {
	d := time.Duration(300+rng.IntN(3701)) * time.Millisecond
	for _, s := range p.Steps {
		switch s.K {
		case kOverrun, kIgnore:
			return time.Duration(150+rng.IntN(451)) * time.Millisecond
		case kLong:
			d = max(d, time.Duration(s.Ms+500)*time.Millisecond)
		}
	}
	return d
}

// newPlan draws up to three attempts' behaviours; most jobs are quick.
func newPlan(rng *rand.Rand) plan {
	var p plan
	n := 0
	switch r := rng.IntN(100); {
	case r < 45:
	case r < 75:
		n = 1
	case r < 92:
		n = 2
	default:
		n = 3
	}
	for range n {
		var s step
		switch r := rng.IntN(100); {
		case r < 12:
			s = step{kQuick, rng.IntN(20)}
		case r < 28:
			s = step{kSlow, 100 + rng.IntN(2400)}
		case r < 32:
			s = step{kLong, 2500 + rng.IntN(2500)}
		case r < 43:
			s = step{kStubborn, 50 + rng.IntN(2000)}
		case r < 58:
			s = step{kFail, 0}
		case r < 64:
			s = step{kRetryAfter, 20 + rng.IntN(200)}
		case r < 68:
			s = step{kSkip, 0}
		case r < 78:
			s = step{kPanic, 0}
		case r < 90:
			s = step{kOverrun, 0}
		default:
			s = step{kIgnore, ignoreMinMs + rng.IntN(300)}
		}
		p.Steps = append(p.Steps, s)
	}
	return p
}

// ignoreMinMs: an ignoring handler sleeps at least this long past its timeout and
// grace, so that its worker surely abandons it first.
const ignoreMinMs = 300

// runRec is one run of a job: one call of a handler.
type runRec struct {
	name    string // "<job id>#<n>": what its result and errors name
	job     string
	queue   string
	worker  *workerRec
	attempt int
	step    step
	lease   time.Time     // the lease's start as Redis set it (job.StartedAt)
	timeout time.Duration // the job's timeout
	start   time.Time
	// set when its context ends (before the handler returned) and when it returns
	cancelAt time.Time
	cause    error
	end      time.Time
	ended    bool
	ok       bool // returned a nil error (and did not panic)
}

// hardDeadline is when the worker abandons the run at the latest, if it has not
// returned: its timeout plus the grace, from the lease's start (the worker's own timer
// starts a little later, so this is never after it).
func (r *runRec) hardDeadline() time.Time { return r.lease.Add(r.timeout + r.worker.grace) }

// release is when the run's slot was free again, at the latest: its return, its hard
// deadline, or the grace after a stop reached it.
func (r *runRec) release() time.Time {
	t := r.end
	if h := r.hardDeadline(); h.Before(t) {
		t = h
	}
	if errors.Is(r.cause, job.ErrCanceled) {
		if s := r.cancelAt.Add(r.worker.grace); s.Before(t) {
			t = s
		}
	}
	return t
}

// abandoned reports whether the run surely outlived the worker's patience: its
// timeout plus the grace from the handler's start (the worker's timer starts before
// it), or the grace after a stop reached it. The worker ended the attempt without it,
// so its outcome must have been dropped.
func (r *runRec) abandoned() bool {
	const margin = ignoreMinMs * time.Millisecond * 5 / 6
	return r.end.Sub(r.start.Add(r.timeout+r.worker.grace)) > margin ||
		(errors.Is(r.cause, job.ErrCanceled) && r.end.Sub(r.cancelAt.Add(r.worker.grace)) > margin)
}

// handler is the one func of every task: it records the run and acts its plan's step.
func (s *suite) handler(wr *workerRec) worker.Handler {
	return func(ctx context.Context, j *job.Job) (res any, err error) {
		var p plan
		if derr := j.Decode(&p); derr != nil {
			s.violate("job %s: payload does not decode: %v", j.ID, derr)
		}
		r := s.begin(wr, j, p.at(j.Attempt))
		stopWatch := context.AfterFunc(ctx, func() { s.canceled(r, context.Cause(ctx)) })
		returned := false
		defer func() {
			stopWatch() // the worker cancels the context once we return: not ours to see
			s.end(r, returned && err == nil)
		}()
		res, err = s.act(ctx, r)
		returned = true
		return res, err
	}
}

// act does what the run's step says.
func (s *suite) act(ctx context.Context, r *runRec) (any, error) {
	d := time.Duration(r.step.Ms) * time.Millisecond
	switch r.step.K {
	case kQuick, kSlow, kLong:
		if err := work(ctx, d); err != nil {
			return nil, fmt.Errorf("%s: %w", r.name, err)
		}
		return r.name, nil
	case kStubborn:
		_ = work(ctx, d)
		return r.name, nil
	case kFail:
		return nil, fmt.Errorf("%s: planned failure", r.name)
	case kRetryAfter:
		return nil, job.RetryAfter(d, fmt.Errorf("%s: planned retry", r.name))
	case kSkip:
		return nil, job.SkipRetry(fmt.Errorf("%s: planned fatal failure", r.name))
	case kPanic:
		panic(r.name + ": planned panic")
	case kOverrun:
		<-ctx.Done()
		time.Sleep(r.worker.grace / 3) // work that goes on a little after the end: within the grace
		return nil, fmt.Errorf("%s: %w", r.name, ctx.Err())
	case kIgnore:
		time.Sleep(r.timeout + r.worker.grace + d) // work that never looks at its context
		return r.name, nil
	}
	return nil, fmt.Errorf("%s: unknown step %v", r.name, r.step.K)
}

// work takes d, or until ctx ends.
func work(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *suite) begin(wr *workerRec, j *job.Job, st step) *runRec {
	now := time.Now()
	s.inflight.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nruns++
	r := &runRec{name: fmt.Sprintf("%s#%d", j.ID, s.nruns), job: j.ID, queue: j.Options.Queue, worker: wr,
		attempt: j.Attempt, step: st, lease: j.StartedAt, timeout: j.Options.Timeout, start: now}
	s.runs[r.name] = r
	s.runsOf[j.ID] = append(s.runsOf[j.ID], r)
	s.stepCount[st.K]++
	return r
}

func (s *suite) canceled(r *runRec, cause error) {
	now := time.Now()
	s.mu.Lock()
	if r.cancelAt.IsZero() {
		r.cancelAt, r.cause = now, cause
	}
	s.mu.Unlock()
}

func (s *suite) end(r *runRec, ok bool) {
	now := time.Now()
	s.mu.Lock()
	r.end, r.ended, r.ok = now, true, ok
	s.mu.Unlock()
	s.inflight.Add(-1)
}
