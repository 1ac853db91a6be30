// Package clusterfault runs the cluster-fault scenario: one worker serves a queue on a
// healthy master and a queue on a master that is paused, then killed and started
// again, while producers enqueue on both. It measures how soon the healthy queue's
// jobs start through the faults, and how soon the faulty queue is served again after
// its master's return. The cluster conformance suite asserts on it, and
// `go run ./bench cluster_fault` reports it.
package clusterfault
