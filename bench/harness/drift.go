package harness

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/sim"
	"github.com/redis/go-redis/v9"
)

// Drift measures how fast the learned order recovers when two task types swap their
// run times halfway through the seed workload: jobs are taken in start order, Kendall
// tau of predicted vs actual is computed over a rolling window of 100 jobs, and the
// recovery is the number of jobs started after the swap until that tau is back within
// 0.05 of its median over the quarter before the swap.
func Drift(ctx context.Context, rdb redis.UniversalClient, n, slots int, load float64, seed uint64) (Line, error) {
	base := sim.SeedWorkload(n, slots, load, seed)
	trace := sim.Drift(base, "type2", "type4")
	r, err := sim.Run(ctx, trace, sim.Config{Slots: slots, Policy: sim.PolicyActive, Rule: ranking.DefaultRule, W: ranking.DefaultW, Redis: rdb})
	if err != nil {
		return Line{}, err
	}
	type started struct {
		at         time.Duration
		pred, real float64
	}
	var js []started
	sorted := append([]sim.Job(nil), trace...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a].Offset < sorted[b].Offset })
	swap := sorted[len(sorted)/2].Offset
	for i, j := range trace {
		at := j.Offset + time.Duration(r.Completion[i]*float64(time.Millisecond)) - j.Duration
		js = append(js, started{at, r.Predicted[i], float64(j.Duration) / float64(time.Millisecond)})
	}
	sort.Slice(js, func(a, b int) bool { return js[a].at < js[b].at })
	const win = 100
	tau := make([]float64, len(js))
	for i := win; i <= len(js); i++ {
		var p, a []float64
		for _, s := range js[i-win : i] {
			p, a = append(p, s.pred), append(a, s.real)
		}
		tau[i-1] = ranking.KendallTau(p, a)
	}
	first := sort.Search(len(js), func(i int) bool { return js[i].at >= swap })
	var before []float64
	for i := max(win, first-len(js)/4); i < first; i++ {
		before = append(before, tau[i])
	}
	baseline := median(before)
	// the order has recovered once the rolling window, which first fills with
	// post-swap jobs at first+win, is back near the baseline
	recover := -1
	dip := 1.0
	for i := first; i < len(js); i++ {
		dip = min(dip, tau[i])
		if i >= first+win/2 && tau[i] >= baseline-0.05 && dip < baseline-0.05 {
			recover = i - first
			break
		}
	}
	return Line{Head: "drift", KV: [][2]string{{"jobs", strconv.Itoa(n)}, {"tau_before", f2(baseline)}, {"tau_dip", f2(dip)},
		{"jobs_to_recover", strconv.Itoa(recover)}}}, nil
}
