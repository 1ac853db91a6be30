package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/sim"
)

// Ranking reads queue's ranking settings.
func (c *Client) Ranking(ctx context.Context, queue string) (ranking.Config, error) {
	return c.store.Ranking(ctx, queue)
}

// SetRanking replaces queue's ranking settings. Workers follow them from their next
// fetch: no restart.
func (c *Client) SetRanking(ctx context.Context, queue string, cfg ranking.Config) error {
	return c.store.SetRanking(ctx, queue, cfg)
}

// SetRankingMode switches queue to mode (fifo, shadow or active), keeping the rest.
func (c *Client) SetRankingMode(ctx context.Context, queue string, mode ranking.Mode) error {
	cfg, err := c.store.Ranking(ctx, queue)
	if err != nil {
		return err
	}
	cfg.Mode = mode
	return c.store.SetRanking(ctx, queue, cfg)
}

// SetPriors gives prior mean run times (ms) per task, used until a task has run (cold
// start); without one, a new task is predicted at the queue-wide mean.
func (c *Client) SetPriors(ctx context.Context, queue string, priors map[string]float64) error {
	return c.store.SetPriors(ctx, queue, priors)
}

// RankingStats is what queue has learned, per task (the entry with the empty Task: the
// whole queue).
func (c *Client) RankingStats(ctx context.Context, queue string) ([]ranking.TaskStats, error) {
	return c.store.TaskStats(ctx, queue)
}

// RankingReport is the quality of queue's predictions over its recent window, in all
// and per task.
type RankingReport struct {
	Config  ranking.Config
	Overall ranking.Quality
	ByTask  map[string]ranking.Quality
	Window  []ranking.Sample // newest first
}

// RankingQuality measures queue's predictions over its last window jobs (at most 1000).
func (c *Client) RankingQuality(ctx context.Context, queue string, window int) (RankingReport, error) {
	var r RankingReport
	var err error
	if r.Config, err = c.store.Ranking(ctx, queue); err != nil {
		return r, err
	}
	if window <= 0 || window > 1000 {
		window = 1000
	}
	if r.Window, err = c.store.Window(ctx, queue, window); err != nil {
		return r, err
	}
	r.Overall = ranking.Measure(r.Window)
	byTask := map[string][]ranking.Sample{}
	for _, s := range r.Window {
		byTask[s.Task] = append(byTask[s.Task], s)
	}
	r.ByTask = map[string]ranking.Quality{}
	for t, ss := range byTask {
		r.ByTask[t] = ranking.Measure(ss)
	}
	return r, nil
}

// RankingEstimate is what the learned order would do with the queue's recent jobs.
type RankingEstimate struct {
	Jobs         int     // jobs of the window simulated
	Slots        int     // worker slots simulated
	FIFOMeanMs   float64 // mean completion (finish − arrival) in arrival order
	ActiveMeanMs float64 // mean completion in the active order of the queue's rule
	FIFOP99Ms    float64
	ActiveP99Ms  float64
}

// RankingEstimate replays queue's quality window (its recent jobs: arrivals, tasks, run
// times) through the simulator on slots worker slots, in fifo order and in the active
// order of the queue's rule, and reports both mean completions. The simulator runs the
// same scripts on an in-process Redis, never on the queue's own; it takes a second or
// so for a full window, so callers (a dashboard) should cache the answer.
//
// The window records at most 8 jobs of each acknowledgement: under heavy load it is a
// sample of the jobs, and the estimate is that of a lighter load.
func (c *Client) RankingEstimate(ctx context.Context, queue string, slots int) (RankingEstimate, error) {
	if slots <= 0 {
		return RankingEstimate{}, fmt.Errorf("chronoq: slots must be positive (got %d)", slots)
	}
	cfg, err := c.store.Ranking(ctx, queue)
	if err != nil {
		return RankingEstimate{}, err
	}
	window, err := c.store.Window(ctx, queue, 1000)
	if err != nil {
		return RankingEstimate{}, err
	}
	if len(window) == 0 {
		return RankingEstimate{Slots: slots}, nil
	}
	first := window[0].Enqueued
	for _, s := range window {
		first = min(first, s.Enqueued)
	}
	trace := make([]sim.Job, len(window))
	for i, s := range window {
		trace[i] = sim.Job{Offset: time.Duration(s.Enqueued-first) * time.Millisecond, Task: s.Task,
			Duration: time.Duration(s.Actual * float64(time.Millisecond))}
	}
	// the simulated order starts from what the queue has learned, as the real one does
	stats, err := c.store.TaskStats(ctx, queue)
	if err != nil {
		return RankingEstimate{}, err
	}
	priors := map[string]float64{}
	for _, s := range stats {
		if s.Task != "" && s.MeanMs > 0 && s.MeanMs <= ranking.MaxPriorMs { // beyond: no prior SetPriors takes
			priors[s.Task] = s.MeanMs
		}
	}
	rule, w := cfg.Rule, cfg.W
	fifo, err := sim.Run(ctx, trace, sim.Config{Slots: slots, Policy: sim.PolicyFIFO})
	if err != nil {
		return RankingEstimate{}, err
	}
	active, err := sim.Run(ctx, trace, sim.Config{Slots: slots, Policy: sim.PolicyActive, Rule: rule, W: w, Alpha: cfg.Alpha, Priors: priors})
	if err != nil {
		return RankingEstimate{}, err
	}
	return RankingEstimate{Jobs: len(trace), Slots: slots, FIFOMeanMs: fifo.MeanMs, ActiveMeanMs: active.MeanMs,
		FIFOP99Ms: fifo.P99Ms, ActiveP99Ms: active.P99Ms}, nil
}
