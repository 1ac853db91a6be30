// Package store is the one home of chronoq's Redis data model: every key name and every
// Lua script lives here, and the queue, worker and later packages only call its methods.
//
// All keys of a queue share the hash tag {queue}, every script touches one queue only,
// and every key a script touches is passed in KEYS, so the same scripts run on a single
// Redis and on a Redis Cluster. Per-job data lives in per-queue hashes keyed by job id
// (not one key per job), so that a script that discovers job ids (fetch, promote) never
// has to build a key name, and so that a queued job costs two small entries: its record
// and its lane membership. See docs/architecture.md for the full layout.
package store
