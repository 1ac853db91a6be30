// Package queue is chronoq's producer and inspection side: enqueue jobs (typed, by
// name, in bulk, delayed), follow them through a Handle (Wait blocks on a Redis
// pub/sub notification, it does not poll), and operate queues: counts by state,
// listings in dequeue order, cancel, requeue, purge, pause and resume.
//
// The CLI and the dashboard are built on the same Client methods, so they never
// disagree about what a queue holds.
package queue
