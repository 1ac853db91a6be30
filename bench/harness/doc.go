// Package harness runs chronoq's benchmark workloads against any queue system behind
// the System interface, so that chronoq and its peers (bench/peers) are measured by
// the same code, on the same Redis, with the worker in a separate OS process.
package harness
