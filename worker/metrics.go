package worker

import "time"

// Observer is told of every attempt a worker decides: once Redis has recorded its
// outcome, never for an attempt whose lease was taken back. Set it as Config.Observer;
// package worker/prommetrics implements it with Prometheus histograms and counters, and
// a program that sets none links no metrics library.
//
// Observe is called from the worker's own goroutines, several at once, on the path
// that acknowledges jobs: it must be safe for concurrent use and return quickly (count,
// do not block on I/O).
type Observer interface {
	Observe(Attempt)
}

// Attempt describes one decided attempt of a job.
type Attempt struct {
	// Queue and Task name the job's queue and task.
	Queue, Task string
	// Ran is the handler's run time. It is zero when the handler did not return: an
	// outcome decided before it ran (an unreadable record, a task with no handler) or
	// a run abandoned past its hard deadline.
	Ran time.Duration
	// Wait is the time from the attempt's due time (its enqueue, scheduled time or
	// retry time) to its start, when WaitKnown. It is never negative: a job enqueued
	// while a fetch was in flight can start "before" it arrived, by the skew between
	// the two clocks, and counts as no wait.
	Wait      time.Duration
	WaitKnown bool
	// Outcome is what became of the attempt.
	Outcome Outcome
}

// Outcome is what became of an attempt.
type Outcome string

// The outcomes of an attempt.
const (
	OutcomeSucceeded Outcome = "succeeded" // the handler returned no error
	OutcomeRetried   Outcome = "retried"   // it failed and is scheduled to run again
	OutcomeFailed    Outcome = "failed"    // it failed for good
	OutcomeCanceled  Outcome = "canceled"  // it was stopped on request while it ran
)

// metrics hands the worker's observations to Config.Observer; its zero value (no
// observer) costs one nil check per attempt.
type metrics struct {
	o Observer
}

// observe reports one decided attempt. waited is from the attempt's due time (enqueue,
// scheduled time or retry time) to its start, when known.
func (m metrics) observe(queue, task string, ran, waited time.Duration, known bool, outcome Outcome) {
	if m.o == nil {
		return
	}
	if !known {
		waited = 0
	}
	m.o.Observe(Attempt{Queue: queue, Task: task, Ran: ran, Wait: max(waited, 0), WaitKnown: known, Outcome: outcome})
}
