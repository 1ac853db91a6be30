package ranking

import (
	"math"
	"sort"
)

// Sample is one finished job as the quality window records it.
type Sample struct {
	Task      string
	Predicted float64 // ms, as predicted when the job was taken
	Actual    float64 // ms, as it ran
	Enqueued  int64   // unix ms
	Started   int64   // unix ms
}

// TaskStats is what the queue has learned about one task type.
type TaskStats struct {
	Task   string  `json:"task"`
	Count  int64   `json:"count"`
	MeanMs float64 `json:"mean_ms"`  // decayed mean of the run time
	StdMs  float64 `json:"std_ms"`   // decayed standard deviation
	Prior  float64 `json:"prior_ms"` // configured prior, ms (0: none)
}

// Quality measures predictions against what happened, over a window of samples.
type Quality struct {
	Samples      int     `json:"samples"`
	KendallTau   float64 `json:"kendall_tau"` // rank agreement of predicted and actual, -1..1
	Spearman     float64 `json:"spearman"`    // rank correlation, -1..1
	MAEMs        float64 `json:"mae_ms"`      // mean absolute error, ms
	MAPE         float64 `json:"mape"`        // mean absolute error relative to actual (0.25 = 25%)
	MeanActualMs float64 `json:"mean_actual_ms"`
}

// Measure computes the quality of samples: those with a prediction, both it and the run
// time finite (one infinite value would make every mean infinite, which JSON cannot hold).
func Measure(samples []Sample) Quality {
	var pred, act []float64
	for _, s := range samples {
		if s.Predicted > 0 && s.Actual >= 0 && !math.IsInf(s.Predicted, 1) && !math.IsInf(s.Actual, 1) {
			pred = append(pred, s.Predicted)
			act = append(act, s.Actual)
		}
	}
	q := Quality{Samples: len(pred)}
	if len(pred) == 0 {
		return q
	}
	var abs, rel, sum float64
	for i := range pred {
		d := math.Abs(pred[i] - act[i])
		abs += d
		sum += act[i]
		if act[i] > 0 {
			rel += d / act[i]
		}
	}
	n := float64(len(pred))
	q.MAEMs, q.MAPE, q.MeanActualMs = abs/n, rel/n, sum/n
	q.KendallTau = KendallTau(pred, act)
	q.Spearman = Spearman(pred, act)
	return q
}

// KendallTau is Kendall's tau-b of x and y (ties counted once): O(n²), fine for
// windows of a few thousand.
func KendallTau(x, y []float64) float64 {
	var conc, disc, tx, ty float64
	for i := 0; i < len(x); i++ {
		for j := i + 1; j < len(x); j++ {
			dx, dy := sign(x[i]-x[j]), sign(y[i]-y[j])
			switch {
			case dx == 0 && dy == 0:
			case dx == 0:
				tx++
			case dy == 0:
				ty++
			case dx == dy:
				conc++
			default:
				disc++
			}
		}
	}
	den := math.Sqrt((conc + disc + tx) * (conc + disc + ty))
	if den == 0 {
		return 0
	}
	return (conc - disc) / den
}

// Spearman is the Pearson correlation of the ranks of x and y (average ranks for ties).
func Spearman(x, y []float64) float64 { return pearson(ranks(x), ranks(y)) }

func ranks(v []float64) []float64 {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return v[idx[a]] < v[idx[b]] })
	r := make([]float64, len(v))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && v[idx[j+1]] == v[idx[i]] {
			j++
		}
		avg := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			r[idx[k]] = avg
		}
		i = j + 1
	}
	return r
}

func pearson(x, y []float64) float64 {
	n := float64(len(x))
	if n < 2 {
		return 0
	}
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}

func sign(f float64) int {
	switch {
	case f > 0:
		return 1
	case f < 0:
		return -1
	}
	return 0
}
