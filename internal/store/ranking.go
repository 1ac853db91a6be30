package store

import (
	"context"
	"errors"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/chronoq/chronoq/ranking"
)

// Ranking reads queue's ranking settings (the defaults when never set).
func (s *Store) Ranking(ctx context.Context, queue string) (ranking.Config, error) {
	c := ranking.DefaultConfig()
	vals, err := s.rdb.HMGet(ctx, s.Keys(queue).Rank, "mode", "rule", "w", "alpha").Result()
	if err != nil {
		return c, err
	}
	if v, ok := vals[0].(string); ok {
		c.Mode = ranking.Mode(v)
	}
	if v, ok := vals[1].(string); ok {
		c.Rule = ranking.Rule(v)
	}
	if v, ok := vals[2].(string); ok {
		if w, err := ranking.ParseW(v); err == nil {
			c.W = w
		}
	}
	if v, ok := vals[3].(string); ok {
		if a, err := strconv.ParseFloat(v, 64); err == nil {
			c.Alpha = a
		}
	}
	return c, nil
}

// SetRanking stores queue's ranking settings; every worker's next fetch follows them.
func (s *Store) SetRanking(ctx context.Context, queue string, c ranking.Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	return s.rdb.HSet(ctx, s.Keys(queue).Rank, "mode", string(c.Mode), "rule", string(c.Rule),
		"w", ranking.FormatW(c.W), "alpha", strconv.FormatFloat(c.Alpha, 'g', -1, 64)).Err()
}

// SetPriors sets prior mean run times (ms) per task, used until a task has run.
func (s *Store) SetPriors(ctx context.Context, queue string, priors map[string]float64) error {
	if len(priors) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(priors))
	for t, ms := range priors {
		if !(ms > 0) {
			return errors.New("chronoq: a prior must be a positive number of ms (task " + t + ")")
		}
		args = append(args, "p:"+t, strconv.FormatFloat(ms, 'g', -1, 64))
	}
	return s.rdb.HSet(ctx, s.Keys(queue).TaskStats, args...).Err()
}

// TaskStats reads what queue has learned per task; the entry with the empty Task is the
// whole queue's.
func (s *Store) TaskStats(ctx context.Context, queue string) ([]ranking.TaskStats, error) {
	k := s.Keys(queue)
	all, err := s.rdb.HGetAll(ctx, k.TaskStats).Result()
	if err != nil {
		return nil, err
	}
	byTask := map[string]*ranking.TaskStats{}
	get := func(t string) *ranking.TaskStats {
		if byTask[t] == nil {
			byTask[t] = &ranking.TaskStats{Task: t}
		}
		return byTask[t]
	}
	for t, v := range all {
		if task, ok := strings.CutPrefix(t, "p:"); ok {
			get(task).Prior, _ = strconv.ParseFloat(v, 64)
			continue
		}
		if task, ok := strings.CutPrefix(t, "t:"); ok {
			t = task
		} else if t == "*" {
			t = "" // the queue-wide entry: no task can have the empty name
		} else {
			continue
		}
		parts := strings.Split(v, "|")
		if len(parts) != 3 {
			continue
		}
		ts := get(t)
		ts.Count, _ = strconv.ParseInt(parts[0], 10, 64)
		ts.MeanMs, _ = strconv.ParseFloat(parts[1], 64)
		variance, _ := strconv.ParseFloat(parts[2], 64)
		ts.StdMs = sqrt(variance)
	}
	out := make([]ranking.TaskStats, 0, len(byTask))
	for _, ts := range byTask {
		out = append(out, *ts)
	}
	sortStats(out)
	return out, nil
}

// Window reads the most recent samples (newest first), at most limit.
func (s *Store) Window(ctx context.Context, queue string, limit int) ([]ranking.Sample, error) {
	raw, err := s.rdb.LRange(ctx, s.Keys(queue).Window, 0, int64(limit-1)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]ranking.Sample, 0, len(raw))
	for _, r := range raw {
		i := strings.LastIndex(r, "|")
		started, _ := strconv.ParseInt(r[i+1:], 10, 64)
		r = r[:i]
		i = strings.LastIndex(r, "|")
		enq, _ := strconv.ParseInt(r[i+1:], 10, 64)
		r = r[:i]
		i = strings.LastIndex(r, "|")
		ran, _ := strconv.ParseFloat(r[i+1:], 64)
		r = r[:i]
		i = strings.LastIndex(r, "|")
		pred, _ := strconv.ParseFloat(r[i+1:], 64)
		out = append(out, ranking.Sample{Task: r[:i], Predicted: pred, Actual: ran, Enqueued: enq, Started: started})
	}
	return out, nil
}

func sqrt(v float64) float64 {
	if v <= 0 {
		return 0
	}
	return math.Sqrt(v)
}

func sortStats(s []ranking.TaskStats) {
	sort.Slice(s, func(a, b int) bool { return s[a].Task < s[b].Task })
}
