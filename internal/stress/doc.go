// Package stress holds chronoq's randomized, seeded stress test (TestStress): three
// workers serve three queues of a real redis-server while producers enqueue single,
// bulk, delayed and keyed jobs, an operator stops, cancels, deletes and requeues them,
// pauses queues, switches their ranking mode and waits on jobs with deadlines, workers
// are replaced, and Redis is stalled by a busy script now and then. Handlers succeed,
// fail, panic, overrun their timeout or ignore their context, as each job's plan says.
// The queues are then drained, every worker stopped, and the guarantees checked (see
// the list in stress_test.go and docs/architecture.md, Guarantees).
//
// Only the public API is driven (queue.Client, worker.Worker, job options); the store
// package is used for key names alone, to aim a stall at a queue's node.
//
// Environment:
//
//	STRESS_SEED    the seed of every random choice (default: drawn, and logged)
//	STRESS_DUR     how long the random phase runs, a Go duration (default 15s)
//	STRESS_STALLS  0 turns the Redis stalls off (default on)
//
// A failure names the seed; replay it with
//
//	STRESS_SEED=<seed> STRESS_DUR=<dur> go test -race -run TestStress -v ./internal/stress/
//
// The seed fixes each goroutine's sequence of choices, not the interleaving of the
// goroutines: a replay is the same workload, not the same schedule.
package stress
