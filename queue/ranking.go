package queue

import (
	"context"

	"github.com/chronoq/chronoq/ranking"
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
