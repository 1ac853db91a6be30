// Package sim is a discrete-event simulator of chronoq's dequeue order: N worker slots,
// a trace of jobs, and a policy (fifo, active with a rule and w, or the oracle:
// shortest actual job first, non-preemptive).
//
// It does not re-implement the order: every enqueue, fetch and acknowledgement goes
// through the real store and its Lua scripts, on an in-process Redis (miniredis) or a
// real one, with a virtual clock. What the simulator measures is what the Redis path
// does; only the passing of time is simulated.
//
// The package also generates the workloads of docs/ranking.md and reads and writes
// traces as CSV (offset_ms,task,duration_ms[,cost_<name>...]).
package sim
