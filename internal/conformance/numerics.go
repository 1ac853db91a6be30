package conformance

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/sim"
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
		{"PriorsFiniteAndBounded", testPriorsBounded},
		{"DamagedPredictionsAreUnknown", testDamagedPredictions},
		{"DamagedSettingsReadAsDefaults", testDamagedSettings},
		{"DamagedStatsHealOnAck", testDamagedStatsHeal},
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

// SetPriors refuses a prior that is not finite, above 0 and at most ranking.MaxPriorMs,
// naming the task, and stores none of the call's priors.
func testPriorsBounded(t *testing.T, b *bundle) {
	cases := []struct {
		name string
		ms   float64
		want string // "" means stored
	}{
		{"ordinary", 250, ""},
		{"at the bound", ranking.MaxPriorMs, ""},
		{"+Inf", math.Inf(1), "is +Inf ms"},
		{"NaN", math.NaN(), "is NaN ms"},
		{"-Inf", math.Inf(-1), "is -Inf ms"},
		{"zero", 0, "is 0 ms"},
		{"past the bound", ranking.MaxPriorMs * 4, "is 1.26144e+12 ms"},
	}
	tstat := b.s.Keys("default").TaskStats
	for _, tc := range cases {
		task := "t-" + strings.ReplaceAll(tc.name, " ", "-")
		err := b.c.SetPriors(b.ctx, "default", map[string]float64{task: tc.ms, "aa-good": 5})
		stored, rerr := b.s.Redis().HExists(b.ctx, tstat, "p:"+task).Result()
		must(t, rerr)
		if tc.want == "" {
			if err != nil || !stored {
				t.Errorf("%s: %v (stored: %v)", tc.name, err, stored)
			}
			continue
		}
		if !errors.Is(err, ranking.ErrInvalidConfig) || !strings.Contains(err.Error(), `task "`+task+`" `+tc.want) ||
			!strings.Contains(err.Error(), "at most 315360000000") {
			t.Errorf("%s: %v, want an error naming task %q, %q and the bound", tc.name, err, task, tc.want)
		}
		if stored {
			t.Errorf("%s: the refused prior was stored", tc.name)
		}
	}
	if err := b.s.Redis().HDel(b.ctx, tstat, "p:aa-good").Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range stats(t, b) {
		if s.Task == "aa-good" {
			t.Errorf("a call with a refused prior stored its good one: %+v", s)
		}
	}
}

// A learned mean or prior read from Redis that is not a finite number of ms (written by
// an older version, or damaged) is no prediction: the rules treat its lanes as unknown,
// every fetched prediction is finite, and the statistics and quality report hold only
// finite numbers (JSON cannot hold others). A cost bucket whose product overflows is
// unknown as well.
func testDamagedPredictions(t *testing.T, b *bundle) {
	k := b.s.Keys("default")
	for _, rule := range []ranking.Rule{ranking.RuleFixed, ranking.RuleHRRN} {
		// each round's tasks are new: the acknowledgements of a round teach its tasks
		r := "-" + string(rule)
		must(t, b.s.Redis().HSet(b.ctx, k.TaskStats, "p:infprior"+r, "inf", "p:plusinf"+r, "+Inf", "p:nanprior"+r, "nan",
			"p:junk"+r, "12ms", "p:neg"+r, "-5", "t:infmean"+r, "3|inf|0", "t:nanmean"+r, "3|nan|nan", "t:big"+r, "3|1e308|0",
			"*", "9|nan|inf", "p:good"+r, "1").Err())
		must(t, b.s.Redis().HSet(b.ctx, k.Models, "big"+r, steepModel()).Err())
		bad := []string{"infprior", "plusinf", "nanprior", "junk", "neg", "infmean", "nanmean", "big"}
		must(t, b.c.SetRanking(b.ctx, "default", ranking.Config{Mode: ranking.ModeActive, Rule: rule, W: 16, Alpha: 0.1}))
		b.clock.Advance(3 * time.Second) // past the client's model cache
		var want []string
		for _, task := range bad {
			opts := []job.Option{}
			task += r
			if task == "big"+r {
				opts = append(opts, job.Cost("bytes", 1e6)) // bucket +64: 1e308 × 256 overflows
			}
			want = append(want, enqueue(t, b, task, opts...).ID)
			b.clock.Advance(time.Millisecond)
		}
		good := enqueue(t, b, "good"+r).ID
		b.clock.Advance(5 * time.Millisecond)
		// unknown lanes compete on arrival (as predicted 0; under hrrn as due now), so
		// they go first, in arrival order, before the known job
		want = append(want, good)
		var done []store.Done
		for i, id := range want {
			got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
			must(t, err)
			if len(got) != 1 {
				t.Fatalf("%s, fetch %d: %+v", rule, i, got)
			}
			p := got[0].Predicted
			if got[0].ID != id {
				t.Errorf("%s, fetch %d: %s (lane %q, predicted %v), want %s", rule, i, got[0].ID, got[0].Lane, p, id)
			}
			if math.IsNaN(p) || math.IsInf(p, 0) || (id != good && p != 0) || (id == good && p != 1) {
				t.Errorf("%s, fetch %d (lane %q): predicted %v ms", rule, i, got[0].Lane, p)
			}
			_, task, _ := store.ParseLaneMember(got[0].Lane)
			done = append(done, store.Done{ID: got[0].ID, Started: got[0].At, Sample: store.Sample{Task: task,
				Predicted: p, Ran: 5 * time.Millisecond, Enqueued: b.clock.Now(), Started: b.clock.Now()}})
		}
		_, err := b.s.Ack(b.ctx, "default", "w", done)
		must(t, err)
	}
	// what an older version may have left in the quality window
	must(t, b.s.Redis().LPush(b.ctx, k.Window, "old|inf|5|0|0", "old|5|inf|0|0", "old|nan|nan|0|0", "garbage").Err())
	ss := stats(t, b)
	for _, task := range []string{"infprior-fixed", "plusinf-fixed", "nanprior-fixed", "junk-fixed", "neg-fixed"} {
		if ss[task].Prior != 0 {
			t.Errorf("task %s: prior %v, want 0 (none)", task, ss[task].Prior)
		}
	}
	list, err := b.c.RankingStats(b.ctx, "default")
	must(t, err)
	if data, err := json.Marshal(list); err != nil {
		t.Fatalf("stats cannot be written as JSON: %v (%+v)", err, list)
	} else if strings.Contains(string(data), "Inf") || strings.Contains(string(data), "NaN") {
		t.Fatalf("stats: %s", data)
	}
	rep, err := b.c.RankingQuality(b.ctx, "default", 1000)
	must(t, err)
	if _, err := json.Marshal(rep); err != nil {
		t.Fatalf("the quality report cannot be written as JSON: %v (%+v)", err, rep.Overall)
	}
	for _, s := range rep.Window {
		if math.IsNaN(s.Predicted) || math.IsInf(s.Predicted, 0) || math.IsNaN(s.Actual) || math.IsInf(s.Actual, 0) {
			t.Errorf("window sample %+v", s)
		}
	}
	if e, err := sim.EstimateQueue(b.ctx, b.c, "default", 1); err != nil || math.IsNaN(e.ActiveMeanMs) || math.IsInf(e.ActiveMeanMs, 0) {
		t.Errorf("estimate %+v: %v", e, err)
	}
}

// A ranking setting in Redis that SetRanking would refuse reads as its default, so that
// switching the mode (which keeps the rest) repairs it instead of failing on it.
func testDamagedSettings(t *testing.T, b *bundle) {
	rank := b.s.Keys("default").Rank
	cases := []struct{ w, alpha string }{
		{"nan", "inf"}, {"-inf", "nan"}, {"-3", "-0.5"}, {"1e999", "1e999"}, {"NaN", "0"}, {"junk", "2"},
	}
	for _, tc := range cases {
		must(t, b.s.Redis().HSet(b.ctx, rank, "mode", "shadow", "rule", "fixed", "w", tc.w, "alpha", tc.alpha).Err())
		c, err := b.c.Ranking(b.ctx, "default")
		must(t, err)
		if c.W != ranking.DefaultW || c.Alpha != ranking.DefaultAlpha || c.Mode != ranking.ModeShadow || c.Rule != ranking.RuleFixed {
			t.Errorf("w %q, alpha %q: read %+v", tc.w, tc.alpha, c)
		}
		if err := b.c.SetRankingMode(b.ctx, "default", ranking.ModeActive); err != nil {
			t.Errorf("w %q, alpha %q: switching the mode: %v", tc.w, tc.alpha, err)
		}
		if w, _ := b.s.Redis().HGet(b.ctx, rank, "w").Result(); w != "16" {
			t.Errorf("w %q, alpha %q: w %q after the switch", tc.w, tc.alpha, w)
		}
	}
	// +Inf is a valid w, stored as "inf"
	must(t, b.s.Redis().HSet(b.ctx, rank, "w", "inf").Err())
	if c, err := b.c.Ranking(b.ctx, "default"); err != nil || !math.IsInf(c.W, 1) {
		t.Errorf("w inf: %+v %v", c, err)
	}
}

// A task's statistics damaged in Redis (an infinite mean) start afresh at the next
// acknowledgement: folded in, inf stays inf, and the task would never be predicted again.
func testDamagedStatsHeal(t *testing.T, b *bundle) {
	setRanking(t, b, ranking.ModeShadow, ranking.RuleHRRN, 16)
	must(t, b.s.Redis().HSet(b.ctx, b.s.Keys("default").TaskStats, "t:t", "5|inf|0", "*", "5|nan|nan").Err())
	enqueue(t, b, "t")
	finish(t, b, 10)
	st := stats(t, b)["t"]
	if st.MeanMs != 10 || st.Count != 1 {
		t.Fatalf("stats after one 10 ms run over a damaged entry: %+v, want mean 10 over 1", st)
	}
}
