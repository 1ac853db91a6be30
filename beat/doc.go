// Package beat runs recurring jobs from cron specs, from any number of replicas at
// once, and every tick of every entry fires exactly once.
//
// Each (entry, tick) is claimed in Redis by the same script that enqueues its job, in
// the target queue's hash tag, so there is no leader to elect and no double fire when
// replicas' clocks differ by seconds. Entries live in Redis (define them in Go, or add,
// change, disable and delete them at run time); every replica sees the same set.
//
// Specs are evaluated in each entry's time zone, on wall-clock time: a 02:30 entry fires
// once on a spring-forward day (at the first instant after the gap) and once on a
// fall-back day, unlike plain cron, which skips the one and fires twice on the other.
package beat
