package store

import (
	"context"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/chronoq/chronoq/ranking"
)

// Ranking reads queue's ranking settings (the defaults when never set). A number that
// SetRanking would refuse (NaN, a negative or infinite alpha, a damaged entry) reads
// as its default, so a settings change that keeps it is not refused for it.
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
	valid := func(set func(*ranking.Config)) bool {
		d := ranking.DefaultConfig()
		set(&d)
		return d.Validate() == nil
	}
	if v, ok := vals[2].(string); ok {
		if w, err := ranking.ParseW(v); err == nil && valid(func(d *ranking.Config) { d.W = w }) {
			c.W = w
		}
	}
	if v, ok := vals[3].(string); ok {
		if a, err := strconv.ParseFloat(v, 64); err == nil && valid(func(d *ranking.Config) { d.Alpha = a }) {
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

// SetPriors sets prior mean run times (ms) per task, used until a task has run. Each
// must be finite, above 0 and at most ranking.MaxPriorMs; one that is not sets none.
func (s *Store) SetPriors(ctx context.Context, queue string, priors map[string]float64) error {
	if len(priors) == 0 {
		return nil
	}
	if err := ranking.ValidatePriors(priors); err != nil {
		return err
	}
	args := make([]any, 0, 2*len(priors))
	for t, ms := range priors {
		args = append(args, "p:"+t, strconv.FormatFloat(ms, 'g', -1, 64))
	}
	return s.rdb.HSet(ctx, s.Keys(queue).TaskStats, args...).Err()
}

// TaskStats reads what queue has learned per task; the entry with the empty Task is the
// whole queue's. A number that is not finite (a damaged entry) reads as 0, unknown, as
// the scripts take it.
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
			if p := finite(v); p > 0 {
				get(task).Prior = p
			}
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
		ts.MeanMs = max(finite(parts[1]), 0)
		ts.StdMs = sqrt(finite(parts[2]))
	}
	out := make([]ranking.TaskStats, 0, len(byTask))
	for _, ts := range byTask {
		out = append(out, *ts)
	}
	sortStats(out)
	return out, nil
}

// Window reads the most recent samples (newest first), at most limit. A prediction that
// is not finite reads as 0 (none); a sample whose run time is not a finite number of ms
// at least 0 is left out.
func (s *Store) Window(ctx context.Context, queue string, limit int) ([]ranking.Sample, error) {
	raw, err := s.rdb.LRange(ctx, s.Keys(queue).Window, 0, int64(limit-1)).Result()
	if err != nil {
		return nil, err
	}
	out := make([]ranking.Sample, 0, len(raw))
	for _, r := range raw {
		// "task|predicted|ran|enqueued|started", split from the right: a task may hold '|'
		var f [4]string
		ok := true
		for k := 3; k >= 0 && ok; k-- {
			i := strings.LastIndexByte(r, '|')
			ok = i >= 0
			if ok {
				f[k], r = r[i+1:], r[:i]
			}
		}
		ran, err := strconv.ParseFloat(f[1], 64)
		if !ok || err != nil || !(ran >= 0) || math.IsInf(ran, 1) {
			continue // damaged: no sample to judge or replay
		}
		enq, _ := strconv.ParseInt(f[2], 10, 64)
		started, _ := strconv.ParseInt(f[3], 10, 64)
		out = append(out, ranking.Sample{Task: r, Predicted: max(finite(f[0]), 0), Actual: ran, Enqueued: enq, Started: started})
	}
	return out, nil
}

// finite parses a number read from Redis: 0 unless it is a finite float.
func finite(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
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
