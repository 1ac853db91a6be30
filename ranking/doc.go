// Package ranking is chronoq's learned dequeue order: its configuration (mode, rule,
// aging weight), the statistics it learns per task type, and the measures of how good
// its predictions and its order are.
//
// The order itself is decided in Redis, in the dequeue script, for every worker at
// once (see internal/store/scripts/lib.lua and fetch.lua); this package holds the
// vocabulary and the arithmetic that the queue API, the dashboard and the simulator
// (ranking/sim, which drives those same scripts on a virtual clock) share.
//
// Modes, per queue, switchable at run time:
//
//   - fifo: arrival order inside each priority band; no ranking work at all.
//   - shadow: fifo order, but every job's duration is predicted and the prediction
//     judged against the actual duration (quality metrics without changing anything).
//   - active: the learned order.
//
// Rules of the active mode, evaluated over the heads of the lanes of the highest
// non-empty priority band (one lane per task type):
//
//   - RuleFixed: the smallest arrival + W × predicted ms. A job with prediction p is
//     never overtaken by a job that arrived after its own arrival + W × p.
//   - RuleHRRN: the highest response ratio (waited + predicted) / predicted.
package ranking
