package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
)

// Estimate is what the learned order would do with a queue's recent jobs.
type Estimate struct {
	Jobs         int     // jobs of the window simulated
	Slots        int     // worker slots simulated
	FIFOMeanMs   float64 // mean completion (finish − arrival) in arrival order
	ActiveMeanMs float64 // mean completion in the active order of the queue's rule
	FIFOP99Ms    float64
	ActiveP99Ms  float64
}

// EstimateQueue replays queue's quality window (its recent jobs: arrivals, tasks, run
// times) through the simulator on slots worker slots, in fifo order and in the active
// order of the queue's rule, and reports both mean completions. The simulator runs the
// same scripts on an in-process Redis, never on the queue's own; it takes a second or
// so for a full window, so callers (a dashboard) should cache the answer.
//
// The window records at most 8 jobs of each acknowledgement: under heavy load it is a
// sample of the jobs, and the estimate is that of a lighter load.
//
// It lives here, not on queue.Client, so that a program that only enqueues links no
// simulator and no in-process Redis.
func EstimateQueue(ctx context.Context, c *queue.Client, queueName string, slots int) (Estimate, error) {
	if slots <= 0 {
		return Estimate{}, fmt.Errorf("chronoq: slots must be positive (got %d)", slots)
	}
	report, err := c.RankingQuality(ctx, queueName, 1000)
	if err != nil {
		return Estimate{}, err
	}
	window := report.Window
	if len(window) == 0 {
		return Estimate{Slots: slots}, nil
	}
	first := window[0].Enqueued
	for _, s := range window {
		first = min(first, s.Enqueued)
	}
	trace := make([]Job, len(window))
	for i, s := range window {
		trace[i] = Job{Offset: time.Duration(s.Enqueued-first) * time.Millisecond, Task: s.Task,
			Duration: time.Duration(s.Actual * float64(time.Millisecond))}
	}
	// the simulated order starts from what the queue has learned, as the real one does
	stats, err := c.RankingStats(ctx, queueName)
	if err != nil {
		return Estimate{}, err
	}
	priors := map[string]float64{}
	for _, s := range stats {
		if s.Task != "" && s.MeanMs > 0 && s.MeanMs <= ranking.MaxPriorMs { // beyond: no prior SetPriors takes
			priors[s.Task] = s.MeanMs
		}
	}
	cfg := report.Config
	fifo, err := Run(ctx, trace, Config{Slots: slots, Policy: PolicyFIFO})
	if err != nil {
		return Estimate{}, err
	}
	active, err := Run(ctx, trace, Config{Slots: slots, Policy: PolicyActive, Rule: cfg.Rule, W: cfg.W, Alpha: cfg.Alpha, Priors: priors})
	if err != nil {
		return Estimate{}, err
	}
	return Estimate{Jobs: len(trace), Slots: slots, FIFOMeanMs: fifo.MeanMs, ActiveMeanMs: active.MeanMs,
		FIFOP99Ms: fifo.P99Ms, ActiveP99Ms: active.P99Ms}, nil
}
