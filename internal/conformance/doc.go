// Package conformance is one suite of queue semantics that every Redis chronoq runs
// on must pass: the real redis-server in tests and CI, and the embedded miniredis of
// the dev command (so that dev mode is honest about what the scripts do).
package conformance
