package stress

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/chronoq/chronoq/job"
)

var states = []job.State{job.StatePending, job.StateScheduled, job.StateActive, job.StateFailed, job.StateSucceeded, job.StateCanceled}

// listPage is the listings' page size: odd, so pages end anywhere.
const listPage = 97

// maxRunSpan bounds how long a run holds its slot (its release is at its hard
// deadline at the latest: a timeout of at most 5.5 s plus the grace).
const maxRunSpan = 10 * time.Second

// finalChecks runs once the queues are drained and every worker has stopped (and every
// handler returned): nothing moves any more.
func (s *suite) finalChecks() {
	listed := s.checkListings()
	s.checkJobs(listed)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkRuns()
	s.checkOverlaps()
	s.checkCaps()
}

// checkListings pages through every state's listing of every queue and compares it
// with the counts; it returns each listed job's state.
func (s *suite) checkListings() map[string]job.State {
	listed := map[string]job.State{}
	for _, q := range queues {
		c, err := s.c.Counts(s.ctx, q)
		if err != nil {
			s.violate("counts of %s: %v", q, err)
			continue
		}
		if c.Pending+c.Scheduled+c.Active != 0 {
			s.violate("%s drained and its workers stopped, yet counts %+v", q, c)
		}
		want := map[job.State]int64{job.StatePending: c.Pending, job.StateScheduled: c.Scheduled, job.StateActive: c.Active,
			job.StateFailed: c.Failed, job.StateSucceeded: c.Succeeded, job.StateCanceled: c.Canceled}
		for _, st := range states {
			n := 0
			for off := 0; ; off += listPage {
				js, err := s.c.List(s.ctx, q, st, off, listPage)
				if err != nil {
					s.violate("list %s %s from %d: %v", q, st, off, err)
					break
				}
				for _, j := range js {
					n++
					if j.State != st {
						s.violate("job %s is listed %s in %s but reads %s", j.ID, st, q, j.State)
					}
					if prev, dup := listed[j.ID]; dup {
						s.violate("job %s is listed twice: %s and %s", j.ID, prev, st)
					}
					listed[j.ID] = st
				}
				if len(js) < listPage {
					break
				}
			}
			if int64(n) != want[st] {
				s.violate("%s: %d jobs listed %s, counts say %d", q, n, st, want[st])
			}
		}
		// the lifetime success counter: each success counted once, and kept (only
		// deletes take succeeded jobs away)
		s.mu.Lock()
		deleted := int64(s.deletedIn[q])
		s.mu.Unlock()
		if c.Processed < c.Succeeded || c.Processed > c.Succeeded+deleted {
			s.violate("%s: %d successes counted, %d succeeded jobs kept, %d jobs deleted", q, c.Processed, c.Succeeded, deleted)
		}
	}
	return listed
}

// runName finds the name of a run of job id in an error message.
func runName(id, msg string) string {
	return regexp.MustCompile(regexp.QuoteMeta(id) + `#[0-9]+`).FindString(msg)
}

// checkJobs reads every job the test met and checks its end against its listing, the
// operations done on it and its runs.
func (s *suite) checkJobs(listed map[string]job.State) {
	s.mu.Lock()
	recs := append([]*jobRec(nil), s.order...)
	s.mu.Unlock()
	read := make([]*job.Job, len(recs)) // nil: gone
	for i, jr := range recs {
		j, err := s.c.Job(s.ctx, jr.queue, jr.id)
		if err != nil && !errors.Is(err, job.ErrNotFound) {
			s.violate("job %s: %v", jr.id, err)
			return
		}
		read[i] = j
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for i, jr := range recs {
		seen[jr.id] = true
		j := read[i]
		gone := j == nil
		runs := s.runsOf[jr.id]
		st, inListing := listed[jr.id]
		switch {
		case !jr.known:
			s.violate("job %s of %s was met (%d runs) but no enqueue returned it", jr.id, jr.queue, len(runs))
		case gone && inListing:
			s.violate("job %s is not found but listed %s", jr.id, st)
		case gone && jr.deletedAt.IsZero() && !(jr.key != "" && jr.maybeReplaced):
			s.violate("job %s is lost: not found, yet neither deleted nor replaced under its key (key %q, %d runs, %s)", jr.id, jr.key, len(runs), jr.history())
		case !gone && !inListing:
			s.violate("job %s reads %s but is in no listing", jr.id, j.State)
		case !gone && st != j.State:
			s.violate("job %s reads %s but is listed %s", jr.id, j.State, st)
		case !gone && !jr.deletedAt.IsZero() && j.State == job.StateCanceled:
			s.violateUnless("delete-cancels-waiting", "job %s was deleted but reads %s", jr.id, j.State)
		case !gone && !jr.deletedAt.IsZero():
			s.violate("job %s was deleted but reads %s", jr.id, j.State)
		case !gone && !j.State.Terminal():
			s.violate("job %s is %s after the drain", jr.id, j.State)
		}
		if !gone {
			s.checkEnd(jr, j, runs)
		}
		// what the operations promised
		for _, r := range runs {
			if !jr.canceledAt.IsZero() && r.start.After(jr.canceledAt) {
				s.violate("job %s ran (%s) %s after it was canceled", jr.id, r.name, r.start.Sub(jr.canceledAt))
			}
			if !jr.deletedAt.IsZero() && r.start.After(jr.deletedAt) {
				s.violate("job %s ran (%s) %s after it was deleted", jr.id, r.name, r.start.Sub(jr.deletedAt))
			}
		}
		if !jr.stoppedAt.IsZero() {
			after := 0
			for _, r := range runs {
				if r.start.After(jr.stoppedAt) {
					after++
				}
			}
			if after > 1 {
				s.violate("job %s ran %d times after StopJob found it running", jr.id, after)
			}
			if !gone && j.State != job.StateCanceled && j.State != job.StateSucceeded {
				s.violate("job %s was stopped while running but ended %s", jr.id, j.State)
			}
		}
		if !gone && j.State == job.StateCanceled && jr.canceledAt.IsZero() && jr.stoppedAt.IsZero() && jr.deletedAt.IsZero() {
			s.violate("job %s is canceled, but was never canceled nor stopped", jr.id)
		}
		if !jr.canceledAt.IsZero() && !gone && j.State != job.StateCanceled {
			s.violate("job %s was canceled but ended %s", jr.id, j.State)
		}
		for _, w := range jr.waits {
			switch {
			case w.how == 's' && !(!gone && j.State == job.StateSucceeded) && !(gone && !jr.deletedAt.IsZero()):
				s.violate("Wait reported job %s succeeded; it ended %s", jr.id, stateOf(j))
			case w.how == 'c' && !(!gone && j.State == job.StateCanceled) && !gone:
				s.violate("Wait reported job %s canceled; it ended %s", jr.id, stateOf(j))
			case w.how == 'f' && !(!gone && j.State == job.StateFailed) && !gone && jr.requeuedAt.IsZero() && s.requeueAll[jr.queue].IsZero():
				s.violate("Wait reported job %s failed; it ended %s, never requeued", jr.id, stateOf(j))
			case w.how == 'n' && !gone:
				s.violate("Wait reported job %s not found; it ended %s", jr.id, stateOf(j))
			}
		}
	}
	for id, st := range listed {
		if !seen[id] {
			s.violate("job %s is listed %s but the test never enqueued it", id, st)
		}
	}
}

func stateOf(j *job.Job) string {
	if j == nil {
		return "gone"
	}
	return string(j.State)
}

// checkEnd checks that an ended job's outcome comes from its latest run, and one whose
// outcome could count. Called with s.mu held.
func (s *suite) checkEnd(jr *jobRec, j *job.Job, runs []*runRec) {
	latest := func(r *runRec) bool {
		for _, o := range runs {
			if o != r && o.start.After(r.start) {
				s.violate("job %s ended %s from run %s, but run %s of it started %s later", jr.id, j.State, r.name, o.name, o.start.Sub(r.start))
				return false
			}
		}
		return true
	}
	switch j.State {
	case job.StateSucceeded:
		r := s.checkResultLocked(j)
		if r == nil {
			return
		}
		switch {
		case errors.Is(r.cause, job.ErrLeaseExpired):
			s.violate("job %s succeeded from run %s, whose lease was lost (its context was canceled: %v)", jr.id, r.name, r.cause)
		case r.abandoned():
			s.violate("job %s succeeded from run %s, which its worker had abandoned (ran %s, timeout %s)", jr.id, r.name, r.end.Sub(r.start), r.timeout)
		case r.attempt != j.Attempt:
			s.violate("job %s succeeded from run %s of attempt %d, but reads attempt %d", jr.id, r.name, r.attempt, j.Attempt)
		}
		latest(r)
	case job.StateFailed:
		name := runName(jr.id, j.LastError)
		if name == "" {
			return // failed by the worker or the reaper, not by a handler's error
		}
		r := s.runs[name]
		switch {
		case r == nil:
			s.violate("job %s failed with error %q, naming no run of it", jr.id, j.LastError)
		case r.ok:
			s.violate("job %s failed with the error of run %s, which returned nil", jr.id, name)
		case errors.Is(r.cause, job.ErrLeaseExpired):
			s.violate("job %s failed from run %s, whose lease was lost", jr.id, name)
		default:
			latest(r)
		}
	}
}

// checkRuns checks every run against the worker that ran it, the queue's pauses and the
// stops of its job. Called with s.mu held.
func (s *suite) checkRuns() {
	for _, r := range s.runs {
		wr := r.worker
		if !wr.stopped.IsZero() && r.start.After(wr.stopped) {
			s.violate("run %s started %s after its worker %s stopped", r.name, r.start.Sub(wr.stopped), wr.id)
		}
		for _, p := range s.pauses {
			if p.queue == r.queue && r.lease.After(p.paused.Add(2*time.Millisecond)) && r.lease.Before(p.until.Add(-2*time.Millisecond)) {
				s.violate("run %s of paused queue %s: its lease began %s into a pause of %s", r.name, r.queue,
					r.lease.Sub(p.paused), p.until.Sub(p.paused))
			}
		}
		if r.cancelAt.IsZero() {
			continue
		}
		// a run's context ends for a reason
		switch {
		case errors.Is(r.cause, job.ErrLeaseExpired):
		case errors.Is(r.cause, job.ErrCanceled):
			if jr := s.jobs[r.job]; jr == nil || jr.stopAsked.IsZero() || r.cancelAt.Before(jr.stopAsked) {
				s.violate("run %s was canceled as stopped (%v) before any StopJob of its job", r.name, r.cause)
			}
		case errors.Is(r.cause, context.DeadlineExceeded):
			if r.cancelAt.Before(r.lease.Add(r.timeout - 2*time.Millisecond)) {
				s.violate("run %s timed out %s after its lease began, its timeout is %s", r.name, r.cancelAt.Sub(r.lease), r.timeout)
			}
		case errors.Is(r.cause, context.Canceled):
			// a worker's shutdown, or its abandoning the run at the hard deadline
			// before the timeout's own cancel was delivered (two timers' callbacks
			// run in goroutines of their own, in no set order)
			if !r.cancelAt.Before(r.hardDeadline()) {
				s.ops["context canceled at the hard deadline"]++
			} else if wr.stopCalled.IsZero() || r.cancelAt.Before(wr.stopCalled) {
				s.violate("run %s was canceled (%v) while its worker %s was not stopping (%s)", r.name, r.cause, wr.id, r.describe())
			}
		default:
			s.violate("run %s was canceled with cause %v", r.name, r.cause)
		}
	}
	// a stop reaches the running job within a lease and a stall
	for _, jr := range s.jobs {
		if jr.stoppedAt.IsZero() {
			continue
		}
		for _, r := range s.runsOf[jr.id] {
			by := jr.stoppedAt.Add(r.worker.lease + toldSlack)
			if r.start.Before(by) && r.end.After(by) && (r.cancelAt.IsZero() || r.cancelAt.After(by)) {
				s.violate("run %s went on %s after StopJob found job %s running, its context not canceled", r.name,
					r.end.Sub(jr.stoppedAt), jr.id)
			}
		}
	}
}

// checkOverlaps: two runs of a job at once only when the first lost its lease (or was
// abandoned, or handed back): its context is canceled soon after the second began
// (its outcome refused is checked by checkEnd). Called with s.mu held.
func (s *suite) checkOverlaps() {
	for id, runs := range s.runsOf {
		rs := append([]*runRec(nil), runs...)
		sort.Slice(rs, func(a, b int) bool { return rs[a].start.Before(rs[b].start) })
		for i, a := range rs {
			for _, b := range rs[i+1:] {
				if !b.start.Before(a.end) {
					continue
				}
				s.ops["overlapping runs"]++
				s.ops["overlapping runs, first "+causeName(a)]++
				by := b.start.Add(a.worker.lease + toldSlack)
				if a.end.After(by) && (a.cancelAt.IsZero() || a.cancelAt.After(by)) {
					s.violate("run %s of job %s went on %s after run %s of it began, its context not canceled (step %s, worker %s)",
						a.name, id, a.end.Sub(b.start), b.name, a.step.K, a.worker.id)
				}
			}
		}
	}
}

func causeName(r *runRec) string {
	switch {
	case r.cancelAt.IsZero():
		return "not canceled"
	case errors.Is(r.cause, job.ErrLeaseExpired):
		return "lease expired"
	case errors.Is(r.cause, job.ErrCanceled):
		return "stopped"
	case errors.Is(r.cause, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(r.cause, context.Canceled):
		return "shut down"
	}
	return "other"
}

// checkCaps: no worker ran more jobs of a queue at once than its cap, nor more jobs
// than its concurrency. A run holds its slot until its release (return, hard deadline
// or the grace after a stop); capSlack covers seeing its end a little late. Called with
// s.mu held.
func (s *suite) checkCaps() {
	type group struct {
		worker *workerRec
		queue  string // "": every queue
	}
	groups := map[group][]*runRec{}
	for _, r := range s.runs {
		groups[group{r.worker, r.queue}] = append(groups[group{r.worker, r.queue}], r)
		groups[group{r.worker, ""}] = append(groups[group{r.worker, ""}], r)
	}
	for g, rs := range groups {
		limit := g.worker.concurrency
		if g.queue != "" {
			c, ok := g.worker.caps[g.queue]
			if !ok {
				continue
			}
			limit = c
		}
		sort.Slice(rs, func(a, b int) bool { return rs[a].start.Before(rs[b].start) })
		most := 0
		for i, b := range rs {
			n := 1
			for k := i - 1; k >= 0 && b.start.Sub(rs[k].start) < maxRunSpan; k-- {
				if rs[k].release().Add(-capSlack).After(b.start) {
					n++
				}
			}
			most = max(most, n)
			if n > limit {
				s.violate("worker %s ran %d jobs of %q at once at run %s (limit %d)", g.worker.id, n, g.queue, b.name, limit)
			}
		}
		if g.queue == "" {
			s.ops["most runs at once on one worker"] = max(s.ops["most runs at once on one worker"], most)
		}
	}
}

// history describes what the test did to a job, for failure messages.
func (jr *jobRec) history() string {
	var b strings.Builder
	fmt.Fprintf(&b, "task %s, plan %v", jr.task, jr.plan.Steps)
	for _, e := range []struct {
		what string
		at   time.Time
	}{{"stop asked", jr.stopAsked}, {"stopped running", jr.stoppedAt}, {"canceled", jr.canceledAt}, {"deleted", jr.deletedAt}, {"requeued", jr.requeuedAt}} {
		if !e.at.IsZero() {
			fmt.Fprintf(&b, ", %s at %s", e.what, e.at.Format("15:04:05.000"))
		}
	}
	for _, w := range jr.waits {
		fmt.Fprintf(&b, ", wait %c at %s", w.how, w.at.Format("15:04:05.000"))
	}
	return b.String()
}

// describe tells a run's story, for failure messages: times are from its start.
func (r *runRec) describe() string {
	rel := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.Sub(r.start).Round(time.Millisecond).String()
	}
	return fmt.Sprintf("step %s %dms, attempt %d, worker %s (lease %s, grace %s, stop called %s, stopped %s), lease began %s, timeout %s, context ended %s (%v), returned %s (ok %v)",
		r.step.K, r.step.Ms, r.attempt, r.worker.id, r.worker.lease, r.worker.grace, rel(r.worker.stopCalled), rel(r.worker.stopped),
		rel(r.lease), r.timeout, rel(r.cancelAt), r.cause, rel(r.end), r.ok)
}
