package conformance

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/ranking"
)

// Cases on the edges of the numbers: overflowing factors, infinite or damaged
// predictions, estimates at their bounds.
func numericsCases() []struct {
	name string
	fn   func(t *testing.T, b *bundle)
} {
	return []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"HugeCostHintIsTheSlowestBucket", testHugeCostHint},
		{"EstimateBucketsAtTheBounds", testEstimateBounds},
	}
}

// steepModel is a cost model entry as ack.lua writes it ("name|n|Σx|Σy|Σx²|Σxy"), fitted to
// 100 jobs of 400 and 625 bytes whose log run time rises 600 per unit of log1p(bytes):
// steep enough that e^(600·Δx) overflows for a hint of 2,000 bytes. Its typical job is
// about 500 bytes (log1p(500) is the mean of the two log1p).
func steepModel() string {
	var n, sx, sy, sxx, sxy float64
	for i := range 100 {
		c := 400.0
		if i%2 == 1 {
			c = 625
		}
		x := math.Log1p(c)
		y := 600 * x
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return "bytes|" + f(n) + "|" + f(sx) + "|" + f(sy) + "|" + f(sxx) + "|" + f(sxy)
}

// laneBucket is the size bucket of a lane member (" ~b"), 0 for a plain lane.
func laneBucket(t *testing.T, member string) int {
	t.Helper()
	_, s, ok := strings.Cut(member, " ~")
	if !ok {
		return 0
	}
	b, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("lane %q: bucket %v", member, err)
	}
	return b
}

// A cost hint whose run-time factor overflows (+Inf) files its job into the slowest
// bucket, never the fastest: the bucket is computed in log space and clamped in floating
// point, and a model that yields NaN files no bucket at all. In active mode the huge
// hints then run after the typical one.
func testHugeCostHint(t *testing.T, b *bundle) {
	must(t, b.c.SetRanking(b.ctx, "default", ranking.Config{Mode: ranking.ModeActive, Rule: ranking.RuleFixed, W: math.Inf(1), Alpha: 0.1}))
	must(t, b.c.SetPriors(b.ctx, "default", map[string]float64{"resize": 100}))
	models := b.s.Keys("default").Models
	must(t, b.s.Redis().HSet(b.ctx, models, "resize", steepModel(),
		"nanmodel", "bytes|nan|nan|nan|nan|nan", "infmodel", "bytes|inf|inf|inf|inf|inf",
		"bigmodel", "bytes|1e308|1e308|1e308|1e308|1e308").Err())
	cases := []struct {
		task string
		hint float64
		want int
	}{
		{"resize", 500, 0},
		{"resize", 2000, store.MaxCostBucket},
		{"resize", 1e6, store.MaxCostBucket},
		{"resize", math.MaxFloat64, store.MaxCostBucket},
		{"resize", 100, -store.MaxCostBucket},
		{"resize", 0, -store.MaxCostBucket},
		{"nanmodel", 500, 0},
		{"infmodel", 500, 0},
		{"infmodel", 1e6, 0},
		{"bigmodel", 1e6, 0},
	}
	for _, tc := range cases {
		lane, err := b.s.Lane(b.ctx, "default", 5, tc.task, map[string]float64{"bytes": tc.hint}, 0)
		must(t, err)
		if got := laneBucket(t, lane); got != tc.want {
			t.Errorf("%s with %g bytes: lane %q, bucket %d, want %d", tc.task, tc.hint, lane, got, tc.want)
		}
	}
	// the typical job arrives last, and still runs first
	var ids []string
	for _, hint := range []float64{2000, 1e6, 500} {
		ids = append(ids, enqueue(t, b, "resize", job.Cost("bytes", hint)).ID)
		b.clock.Advance(time.Millisecond)
	}
	want := []string{ids[2], ids[0], ids[1]}
	for i, id := range want {
		got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
		must(t, err)
		if len(got) != 1 || got[0].ID != id {
			t.Fatalf("fetch %d: %+v, want %s (hints 2000, 1e6, 500 are %v)", i, got, id, ids)
		}
		if p := got[0].Predicted; math.IsNaN(p) || math.IsInf(p, 0) || p <= 0 {
			t.Fatalf("fetch %d: predicted %v ms", i, p)
		}
	}
}

// A caller's estimate at either bound of job.Estimate files into a finite bucket that
// keeps its order: the shortest first, the longest (job.MaxHorizon) last, each predicted
// within 9% of its estimate.
func testEstimateBounds(t *testing.T, b *bundle) {
	must(t, b.c.SetRanking(b.ctx, "default", ranking.Config{Mode: ranking.ModeActive, Rule: ranking.RuleFixed, W: math.Inf(1), Alpha: 0.1}))
	ests := []time.Duration{job.MaxHorizon, time.Hour, time.Nanosecond, time.Millisecond}
	byID := map[string]time.Duration{}
	for _, d := range ests {
		byID[enqueue(t, b, "t", job.Estimate(d)).ID] = d
		b.clock.Advance(time.Millisecond)
	}
	if _, err := b.c.EnqueueByName(b.ctx, "t", nil, job.Estimate(job.MaxHorizon+1)); err == nil || !strings.Contains(err.Error(), "at most 10 years") {
		t.Fatalf("an estimate past job.MaxHorizon: %v", err)
	}
	var prev time.Duration
	for i := range ests {
		got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
		must(t, err)
		if len(got) != 1 {
			t.Fatalf("fetch %d: %+v", i, got)
		}
		d := byID[got[0].ID]
		if d < prev {
			t.Fatalf("fetch %d: estimate %s after %s", i, d, prev)
		}
		prev = d
		want := max(float64(d)/float64(time.Millisecond), 0.001)
		if p := got[0].Predicted; !(math.Abs(p-want) <= 0.09*want) {
			t.Errorf("estimate %s: predicted %v ms, want %v ± 9%%", d, p, want)
		}
		if le := store.LaneEstimate(got[0].Lane); d >= time.Millisecond && !(math.Abs(float64(le-d)) <= 0.09*float64(d)) {
			t.Errorf("estimate %s: lane %q carries %s", d, got[0].Lane, le)
		}
	}
}
