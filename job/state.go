package job

// State is where a job is in its life.
//
//	            enqueue(In/At)          promote (due)
//	  ┌──────────────▶ scheduled ──────────────┐
//	  │                    ▲                   ▼
//	enqueue ─────────────────────────────▶ pending ──fetch──▶ active ──ok──▶ succeeded
//	                       │                   ▲                │
//	                       └──── retry ────────┼────────────────┤
//	                                           │                └──fail──▶ failed
//	                                   requeue / lease expiry / shutdown
type State string

// The states of a job.
const (
	StatePending   State = "pending"   // waiting in its lane for a worker
	StateScheduled State = "scheduled" // waiting for its due time (delay or retry backoff)
	StateActive    State = "active"    // held by a worker under a lease
	StateSucceeded State = "succeeded" // finished without error; kept for its retention
	StateFailed    State = "failed"    // out of retries, or failed for good; can be requeued
	StateCanceled  State = "canceled"  // canceled before it ran, or stopped on request; kept a day
)

// Terminal reports whether a job in state s will not run again by itself.
func (s State) Terminal() bool {
	return s == StateSucceeded || s == StateFailed || s == StateCanceled
}
