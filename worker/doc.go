// Package worker is chronoq's consumer side: a registry of task funcs, a fetch loop
// that leases jobs in batches from one or more queues (strict order or weights),
// a bounded pool of concurrent jobs (a fixed size, or one that Config.Autoscale varies
// between two bounds by a stated rule), leases renewed while jobs run, retries with
// backoff through the scheduled set, timeouts with a hard deadline, panics turned into
// failed attempts, heartbeats, and graceful shutdown that hands unfinished jobs back.
//
// A worker that finds no work blocks on the queues' wake-up lists (BLPOP), so a job
// enqueued into an idle system starts within a millisecond or two, without polling.
//
// Every worker process also runs, for the queues it serves, the lease reaper (jobs of
// crashed workers go back to pending after their lease) and the promoter (scheduled
// jobs move to pending when due). Both are safe to run in every process at once.
package worker
