// Package devredis opens the Redis that the dev command and the examples run on: the
// one CHRONOQ_REDIS_URL names, else an embedded one (miniredis), so that they run with
// nothing installed. A program copied out of examples/ replaces it with a
// redis.NewClient of its own.
package devredis
