package store

import (
	"context"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

// How long an enqueuing client trusts its copy of a queue's mode and cost models: a
// bucket is a coarse residual, so a second-old model files jobs as well as a fresh one,
// and enqueue stays one script run.
const modelTTL = 2 * time.Second

type modelCache struct {
	read   time.Time
	mode   ranking.Mode
	models map[string]costModel
	// fair share: the queue's fair mode; with it on and the learned order active, the
	// aging weight and the task predictions an in-key score is made of (fairScore)
	fair       fairshare.Mode
	w          float64
	preds      map[string]float64 // task -> predicted ms; "*" the queue's mean
	configured bool               // some fair key has a weight, tags or a default
}

type costModel struct {
	name                string
	n, sx, sy, sxx, sxy float64
}

// logFactor is the natural log of the model's run-time factor for cost value v relative
// to the task's typical job, and whether the model knows enough to say. It stays in log
// space: a steep model and a large hint make the factor itself overflow to +Inf.
func (m costModel) logFactor(v float64) (float64, bool) {
	if !(m.n >= 20) { // written so that a NaN count, read from a damaged entry, fails it
		return 0, false
	}
	x := math.Log1p(v)
	den := m.n*m.sxx - m.sx*m.sx
	if !(den > 1e-9*m.n*m.n) {
		return 0, false
	}
	b := (m.n*m.sxy - m.sx*m.sy) / den
	return b * (x - m.sx/m.n), true
}

// MaxCostBucket bounds a cost-hint size bucket: a lane " ~b" has -MaxCostBucket ≤ b ≤
// MaxCostBucket, a factor of 2^±8 on the task's mean.
const MaxCostBucket = 64

// costBucket is the size bucket of a run-time factor e^logf: round(8·log2 of it),
// clamped to ±MaxCostBucket in floating point (an infinite factor is the largest bucket,
// never wrapped to the smallest), and false for NaN (no bucket).
func costBucket(logf float64) (int, bool) {
	b := 8 * logf / math.Ln2
	if math.IsNaN(b) {
		return 0, false
	}
	b = math.Max(math.Min(b, MaxCostBucket), -MaxCostBucket)
	return int(math.Round(b)), true
}

// Lane chooses the lane of a new job: its own estimate's size bucket when it has one;
// outside fifo mode, its cost hint's size bucket as the task's cost model sees it; else
// the task's lane.
func (s *Store) Lane(ctx context.Context, queue string, priority int, task string, cost map[string]float64, estimate time.Duration) (string, error) {
	if estimate > 0 {
		return EstimateLane(priority, task, estimate), nil
	}
	plain := LaneMember(priority, task)
	if len(cost) == 0 {
		return plain, nil
	}
	mc, err := s.models(ctx, queue)
	if err != nil || mc.mode == ranking.ModeFIFO {
		return plain, err
	}
	m, ok := mc.models[task]
	if !ok {
		return plain, nil
	}
	v, ok := cost[m.name]
	if !ok || !(v >= 0) { // the model is on log1p(cost): a negative hint says nothing
		return plain, nil
	}
	logf, ok := m.logFactor(v)
	if !ok {
		return plain, nil
	}
	b, ok := costBucket(logf)
	if !ok || b == 0 {
		return plain, nil
	}
	return plain + " ~" + strconv.Itoa(b), nil
}

// CostName is the cost hint a job's sample feeds its task's model with: the first
// name in sorted order.
func CostName(cost map[string]float64) (string, float64) {
	if len(cost) == 0 {
		return "", 0
	}
	names := make([]string, 0, len(cost))
	for k := range cost {
		names = append(names, k)
	}
	sort.Strings(names)
	return names[0], cost[names[0]]
}

func (s *Store) models(ctx context.Context, queue string) (*modelCache, error) {
	s.mu.Lock()
	if s.modelCaches == nil {
		s.modelCaches = map[string]*modelCache{}
	}
	mc := s.modelCaches[queue]
	s.mu.Unlock()
	now := s.now()
	if mc != nil && now.Sub(mc.read) < modelTTL && !now.Before(mc.read) {
		return mc, nil
	}
	k := s.Keys(queue)
	pipe := s.rdb.Pipeline()
	rank := pipe.HMGet(ctx, k.Rank, "mode", "rule", "w", "fair")
	cfg := pipe.HGet(ctx, k.FairVirtual, "cfg")
	all := pipe.HGetAll(ctx, k.Models)
	_, _ = pipe.Exec(ctx)
	if err := all.Err(); err != nil {
		return nil, err
	}
	if err := rank.Err(); err != nil {
		return nil, err
	}
	fresh := &modelCache{read: now, mode: ranking.ModeFIFO, fair: fairshare.ModeOff, w: ranking.DefaultW, models: map[string]costModel{}}
	r := rank.Val()
	if m, ok := r[0].(string); ok {
		fresh.mode = ranking.Mode(m)
	}
	if w, ok := r[2].(string); ok {
		if w == "inf" {
			fresh.w = math.Inf(1)
		} else if f, err := strconv.ParseFloat(w, 64); err == nil && f >= 0 {
			fresh.w = f
		}
	}
	if f, ok := r[3].(string); ok {
		if m, err := fairshare.ParseMode(f); err == nil {
			fresh.fair = m
		}
	}
	if n, err := cfg.Int(); err == nil && n > 0 {
		fresh.configured = true
	}
	if fresh.fair != fairshare.ModeOff && fresh.mode == ranking.ModeActive {
		stats, err := s.rdb.HGetAll(ctx, k.TaskStats).Result()
		if err != nil {
			return nil, err
		}
		fresh.preds = taskPredictions(stats)
	}
	for task, v := range all.Val() {
		parts := strings.Split(v, "|")
		if len(parts) < 6 {
			continue
		}
		nums := parts[len(parts)-5:]
		var f [5]float64
		for j := range f {
			f[j], _ = strconv.ParseFloat(nums[j], 64)
		}
		name := strings.Join(parts[:len(parts)-5], "|")
		fresh.models[task] = costModel{name: name, n: f[0], sx: f[1], sy: f[2], sxx: f[3], sxy: f[4]}
	}
	s.mu.Lock()
	s.modelCaches[queue] = fresh
	s.mu.Unlock()
	return fresh, nil
}

// taskPredictions reads a task stats hash as the scripts' predict does: per task the
// learned mean ("t:<task>"), else its prior ("p:<task>"); "*" the queue-wide mean.
func taskPredictions(stats map[string]string) map[string]float64 {
	out := map[string]float64{}
	known := func(v string) (float64, bool) {
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil && f >= 0 && !math.IsInf(f, 1)
	}
	for field, v := range stats {
		switch {
		case field == "*", strings.HasPrefix(field, "t:"):
			if parts := strings.Split(v, "|"); len(parts) == 3 {
				if f, ok := known(parts[1]); ok {
					out[strings.TrimPrefix(field, "t:")] = f
				}
			}
		}
	}
	for field, v := range stats {
		if task, ok := strings.CutPrefix(field, "p:"); ok {
			if _, learned := out[task]; !learned {
				if f, ok := known(v); ok {
					out[task] = f
				}
			}
		}
	}
	return out
}

// fairScore is the in-key score of a job placed at due (ms) in lane: its due time, and
// under the learned order that plus w × its lane's prediction (the fixed rule: a job is
// never overtaken inside its key by one due more than w × its prediction after it).
func fairScore(mc *modelCache, lane string, due int64) int64 {
	if mc.mode != ranking.ModeActive {
		return due
	}
	pred, ok := lanePrediction(mc, lane)
	if !ok {
		return due
	}
	w := math.Min(mc.w, maxInKeyW) // w = ∞ (shortest first): a large finite weight
	add := w * pred
	if !(add < 1e15) {
		add = 1e15
	}
	return due + int64(add)
}

// maxInKeyW stands for an infinite aging weight inside a key (fairScore): predictions
// then decide up to 10⁶ × their difference in arrival.
const maxInKeyW = 1e6

// lanePrediction is the scripts' lane_prediction from the cached task predictions.
func lanePrediction(mc *modelCache, lane string) (float64, bool) {
	if d := LaneEstimate(lane); d > 0 {
		return float64(d) / float64(time.Millisecond), true
	}
	_, task, err := ParseLaneMember(lane)
	if err != nil {
		return 0, false
	}
	p, ok := mc.preds[task]
	if !ok {
		p, ok = mc.preds["*"]
	}
	if !ok {
		return 0, false
	}
	if i := strings.Index(lane, " ~"); i >= 0 {
		if b, err := strconv.Atoi(lane[i+2:]); err == nil {
			p *= math.Pow(2, float64(b)/8)
		}
	}
	return p, !math.IsInf(p, 0) && !math.IsNaN(p)
}
