package sim

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/ranking"
	"github.com/redis/go-redis/v9"
)

// Job is one job of a trace.
type Job struct {
	Offset   time.Duration // arrival, from the trace's start
	Task     string
	Duration time.Duration // how long it runs
	Cost     map[string]float64
}

// Policy names.
const (
	PolicyFIFO   = "fifo"
	PolicyActive = "active"
	PolicyOracle = "oracle"
)

// Config of one simulation.
type Config struct {
	Slots  int    // worker slots (all workers together)
	Policy string // fifo, active or oracle
	Rule   ranking.Rule
	W      float64
	Alpha  float64            // 0: ranking.DefaultAlpha
	Priors map[string]float64 // cold-start priors, ms
	// Redis runs the scripts; nil starts an in-process miniredis for the run.
	Redis redis.UniversalClient
}

// Result of a simulation: completion times (finish − arrival) in ms.
type Result struct {
	Jobs                      int
	MeanMs, P50Ms, P99Ms, Max float64
	// Tau is Kendall's tau of predicted vs actual run time over the jobs that had a
	// prediction (0 for fifo, which predicts nothing).
	Tau float64
	// Completion is each job's completion time in ms, in trace order.
	Completion []float64
	// Predicted is each job's prediction in ms when it was taken (0: none).
	Predicted []float64
}

// Run simulates trace under cfg.
func Run(ctx context.Context, trace []Job, cfg Config) (Result, error) {
	if cfg.Slots <= 0 {
		return Result{}, fmt.Errorf("sim: slots must be positive")
	}
	rdb := cfg.Redis
	if rdb == nil {
		m, err := miniredis.Run()
		if err != nil {
			return Result{}, err
		}
		defer m.Close()
		c := redis.NewClient(&redis.Options{Addr: m.Addr()})
		defer c.Close()
		rdb = c
	} else if err := rdb.FlushDB(ctx).Err(); err != nil {
		return Result{}, err
	}
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := epoch
	s := store.New(rdb, "sim", func() time.Time { return now })
	const q = "sim"
	rc := ranking.Config{Mode: ranking.ModeFIFO, Rule: ranking.DefaultRule, W: ranking.DefaultW, Alpha: cfg.Alpha}
	if rc.Alpha == 0 {
		rc.Alpha = ranking.DefaultAlpha
	}
	switch cfg.Policy {
	case PolicyFIFO:
	case PolicyActive:
		rc.Mode, rc.Rule, rc.W = ranking.ModeActive, cfg.Rule, cfg.W
	case PolicyOracle:
		rc.Mode, rc.Rule, rc.W = ranking.ModeActive, ranking.RuleFixed, math.Inf(1)
	default:
		return Result{}, fmt.Errorf("sim: unknown policy %q (fifo, active, oracle)", cfg.Policy)
	}
	if err := s.SetRanking(ctx, q, rc); err != nil {
		return Result{}, err
	}
	if err := s.SetPriors(ctx, q, cfg.Priors); err != nil {
		return Result{}, err
	}

	order := make([]int, len(trace)) // arrivals in time order
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return trace[order[a]].Offset < trace[order[b]].Offset })
	res := Result{Jobs: len(trace), Completion: make([]float64, len(trace)), Predicted: make([]float64, len(trace))}
	byID := make(map[string]int, len(trace))
	var running completions
	next, free := 0, cfg.Slots
	for next < len(order) || running.Len() > 0 {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		// the next event: an arrival or a completion, completions first on a tie
		t := time.Duration(math.MaxInt64)
		if next < len(order) {
			t = trace[order[next]].Offset
		}
		if running.Len() > 0 && running[0].at <= t {
			t = running[0].at
		}
		now = epoch.Add(t)
		var done []store.Done
		for running.Len() > 0 && running[0].at == t {
			c := heap.Pop(&running).(completion)
			j := trace[c.job]
			res.Completion[c.job] = float64(t-j.Offset) / float64(time.Millisecond)
			name, cost := store.CostName(j.Cost)
			done = append(done, store.Done{ID: c.id, Started: c.fetched, Sample: store.Sample{Task: j.Task, Predicted: res.Predicted[c.job],
				Ran: j.Duration, Enqueued: epoch.Add(j.Offset), Started: epoch.Add(t - j.Duration), CostName: name, Cost: cost}})
			free++
		}
		if len(done) > 0 {
			if _, err := s.Ack(ctx, q, "sim", done); err != nil {
				return res, err
			}
		}
		var arrivals []store.NewJob
		for next < len(order) && trace[order[next]].Offset == t {
			i := order[next]
			id := fmt.Sprintf("j%08d", i)
			byID[id] = i
			var estimate time.Duration
			if cfg.Policy == PolicyOracle {
				estimate = trace[i].Duration // the oracle's prediction is the truth
			}
			lane, err := s.Lane(ctx, q, 5, trace[i].Task, trace[i].Cost, estimate)
			if err != nil {
				return res, err
			}
			arrivals = append(arrivals, store.NewJob{ID: id, Lane: lane, Record: []byte{0xc0}})
			next++
		}
		if len(arrivals) > 0 {
			if err := s.Enqueue(ctx, q, arrivals); err != nil {
				return res, err
			}
		}
		if free > 0 {
			got, err := s.Fetch(ctx, q, "sim", free, time.Hour)
			if err != nil {
				return res, err
			}
			for _, f := range got {
				i := byID[f.ID]
				res.Predicted[i] = f.Predicted
				heap.Push(&running, completion{at: t + trace[i].Duration, job: i, id: f.ID, fetched: f.At})
				free--
			}
		}
	}
	res.summarize(trace)
	return res, nil
}

func (r *Result) summarize(trace []Job) {
	c := append([]float64(nil), r.Completion...)
	sort.Float64s(c)
	sum := 0.0
	for _, x := range c {
		sum += x
	}
	if len(c) == 0 {
		return
	}
	r.MeanMs = sum / float64(len(c))
	r.P50Ms = Percentile(c, 0.50)
	r.P99Ms = Percentile(c, 0.99)
	r.Max = c[len(c)-1]
	var pred, act []float64
	for i, p := range r.Predicted {
		if p > 0 {
			pred = append(pred, p)
			act = append(act, float64(trace[i].Duration)/float64(time.Millisecond))
		}
	}
	if len(pred) > 1 {
		r.Tau = ranking.KendallTau(pred, act)
	}
}

// Percentile of sorted values (nearest rank).
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

type completion struct {
	at      time.Duration
	job     int
	id      string
	fetched time.Time
}

type completions []completion

func (c completions) Len() int { return len(c) }
func (c completions) Less(i, j int) bool {
	if c[i].at != c[j].at {
		return c[i].at < c[j].at
	}
	return c[i].job < c[j].job
}
func (c completions) Swap(i, j int) { c[i], c[j] = c[j], c[i] }
func (c *completions) Push(x any)   { *c = append(*c, x.(completion)) }
func (c *completions) Pop() any {
	old := *c
	x := old[len(old)-1]
	*c = old[:len(old)-1]
	return x
}
