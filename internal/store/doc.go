// Package store is the one home of chronoq's Redis data model: every key name and every
// Lua script lives here, and the queue, worker and later packages only call its methods.
//
// All keys of a queue share the hash tag {queue}, every script touches one queue only,
// and every key a script touches is passed in KEYS, so the same scripts run on a single
// Redis and on a Redis Cluster. Per-job data lives in per-queue hashes keyed by job id
// (not one key per job), so that a script that discovers job ids (fetch, promote) never
// has to build a key name, and so that a queued job costs two small entries: its record
// and its lane membership. See docs/architecture.md for the full layout.
//
// By concern: keys.go names every key; enqueue.go and keyed.go store jobs; consume.go
// is the worker's side (fetch, ack, fail, renew, hand back, reclaim, promote); idle.go
// the idle hand-off, its claim and the wait for work (one BLPOP per queue on a
// cluster); admin.go cancel, requeue, purge, pause and trim; inspect.go counts,
// listings and activity; ranking.go and lanes.go the learned order's reads; beat.go and
// tasks.go the beat's entries and the declared task options; scripts.go the scripts.
package store
