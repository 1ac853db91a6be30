package conformance

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/sim"
)

func rankingCases() []struct {
	name string
	fn   func(t *testing.T, b *bundle)
} {
	return []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"RankingSettings", testRankingSettings},
		{"StatsOncePerFinishedJob", testStatsOnce},
		{"ActiveFixedOrder", testActiveFixed},
		{"FixedStarvationBound", testFixedStarvation},
		{"HRRNOrderAndCap", testHRRNCap},
		{"ShadowKeepsFIFO", testShadow},
		{"ModeSwitchLosesNothing", testModeSwitch},
		{"CostModelBuckets", testCostModel},
		{"EstimateOverWindow", testEstimate},
		{"BatchEqualsOneByOne", testBatchEqualsSingle},
		{"UnknownLaneNotStarved", testUnknownLane},
		{"TaskNamesCannotCollide", testTaskNames},
		{"RefetchedJobCountedOnce", testRefetchOnce},
	}
}

func setRanking(t *testing.T, b *bundle, mode ranking.Mode, rule ranking.Rule, w float64) {
	t.Helper()
	must(t, b.c.SetRanking(b.ctx, "default", ranking.Config{Mode: mode, Rule: rule, W: w, Alpha: 0.5}))
}

// finish fetches one job and acks it as having run ms.
func finish(t *testing.T, b *bundle, ms float64) store.Fetched {
	t.Helper()
	got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
	must(t, err)
	if len(got) != 1 {
		t.Fatal("nothing to fetch")
	}
	_, task, _ := store.ParseLaneMember(got[0].Lane)
	_, err = b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: got[0].ID, Sample: store.Sample{
		Task: task, Predicted: got[0].Predicted, Ran: time.Duration(ms * float64(time.Millisecond)), Enqueued: b.clock.Now(), Started: b.clock.Now()}}})
	must(t, err)
	return got[0]
}

func stats(t *testing.T, b *bundle) map[string]ranking.TaskStats {
	t.Helper()
	ss, err := b.c.RankingStats(b.ctx, "default")
	must(t, err)
	m := map[string]ranking.TaskStats{}
	for _, s := range ss {
		m[s.Task] = s
	}
	return m
}

func testRankingSettings(t *testing.T, b *bundle) {
	c, err := b.c.Ranking(b.ctx, "default")
	must(t, err)
	if c != ranking.DefaultConfig() {
		t.Fatalf("default %+v", c)
	}
	if err := b.c.SetRankingMode(b.ctx, "default", "turbo"); !errors.Is(err, ranking.ErrInvalidConfig) {
		t.Fatalf("bad mode: %v", err)
	}
	must(t, b.c.SetRankingMode(b.ctx, "default", ranking.ModeActive))
	c, err = b.c.Ranking(b.ctx, "default")
	must(t, err)
	if c.Mode != ranking.ModeActive || c.Rule != ranking.DefaultRule || c.W != ranking.DefaultW {
		t.Fatalf("after switch %+v", c)
	}
	if err := b.c.SetPriors(b.ctx, "default", map[string]float64{"x": -1}); err == nil {
		t.Fatal("negative prior accepted")
	}
}

func testStatsOnce(t *testing.T, b *bundle) {
	enqueue(t, b, "a")
	finish(t, b, 10) // fifo: no ranking work
	if len(stats(t, b)) != 0 {
		t.Fatalf("fifo mode learned %v", stats(t, b))
	}
	setRanking(t, b, ranking.ModeShadow, ranking.RuleFixed, 4)
	enqueue(t, b, "a")
	finish(t, b, 10)
	enqueue(t, b, "a")
	finish(t, b, 30) // alpha 0.5: mean 20
	// a retried job counts once, when it succeeds; a job whose lease was taken back
	// is not counted by the worker that lost it
	h := enqueue(t, b, "a", job.MaxRetries(2))
	fetchIDs(t, b, "default", "w", 1)
	_, err := b.s.Fail(b.ctx, "default", "w", store.Failure{ID: h.ID, Retry: true, Due: b.clock.Now(), Error: "x"})
	must(t, err)
	_, _, err = b.s.Promote(b.ctx, "default", 10)
	must(t, err)
	got, err := b.s.Fetch(b.ctx, "default", "lost", 1, time.Second)
	must(t, err)
	b.clock.Advance(2 * time.Second)
	_, _, err = b.s.ReclaimExpired(b.ctx, "default", "gone")
	must(t, err)
	lost, err := b.s.Ack(b.ctx, "default", "lost", []store.Done{{ID: got[0].ID, Sample: store.Sample{Task: "a", Ran: time.Second}}})
	must(t, err)
	if len(lost) != 1 {
		t.Fatal("an expired lease was acknowledged")
	}
	finish(t, b, 20)
	s := stats(t, b)
	if s["a"].Count != 3 || s["a"].MeanMs != 20 || s[""].Count != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func testActiveFixed(t *testing.T, b *bundle) {
	must(t, b.c.SetPriors(b.ctx, "default", map[string]float64{"long": 100, "short": 10}))
	setRanking(t, b, ranking.ModeActive, ranking.RuleFixed, 4)
	long := enqueue(t, b, "long").ID
	b.clock.Advance(time.Millisecond)
	short := enqueue(t, b, "short").ID
	b.clock.Advance(time.Millisecond)
	vip := enqueue(t, b, "long", job.Priority(9)).ID // bands stay strict
	got, err := b.s.Fetch(b.ctx, "default", "w", 3, time.Minute)
	must(t, err)
	if len(got) != 3 || got[0].ID != vip || got[1].ID != short || got[2].ID != long {
		t.Fatalf("order %v, want vip, short, long", got)
	}
	if got[1].Predicted != 10 || got[2].Predicted != 100 {
		t.Fatalf("predictions %v %v", got[1].Predicted, got[2].Predicted)
	}
}

// An adversarial stream of short jobs, faster than they are served: under the fixed
// rule a long job (prediction p) is never overtaken by a job that arrived after its
// own arrival + w × p.
func testFixedStarvation(t *testing.T, b *bundle) {
	must(t, b.c.SetPriors(b.ctx, "default", map[string]float64{"long": 100, "short": 10}))
	const w = 4.0
	setRanking(t, b, ranking.ModeActive, ranking.RuleFixed, w)
	checkBound(t, b, w*100)
}

// The same stream under hrrn: plain response ratio would starve the long job (the
// shorts' backlog grows, so their heads' ratios outgrow its own); the cap w bounds it.
func testHRRNCap(t *testing.T, b *bundle) {
	must(t, b.c.SetPriors(b.ctx, "default", map[string]float64{"long": 100, "short": 10}))
	// w 4, not the default 16: the bound check takes one round of fetches per ms of
	// the bound, and the embedded Redis under -race runs about 5 ms a round
	setRanking(t, b, ranking.ModeActive, ranking.RuleHRRN, 4)
	// response ratio: a long job that has waited goes before a fresh short one
	l := enqueue(t, b, "long").ID
	b.clock.Advance(300 * time.Millisecond)
	enqueue(t, b, "short")
	if got := fetchIDs(t, b, "default", "w", 1); got[0] != l {
		t.Fatalf("hrrn took %v, want the long job (ratio 4 against 1)", got)
	}
	fetchIDs(t, b, "default", "w", 10)
	checkBound(t, b, 4*100)
}

// checkBound runs 2 short arrivals per 1 ms while one job is served per ms, with a long
// job arriving at the start, and checks that no short job that arrived after the long
// one's arrival + bound ms was taken before it.
func checkBound(t *testing.T, b *bundle, bound float64) {
	t.Helper()
	for i := 0; i < 20; i++ { // a backlog of shorts first
		enqueue(t, b, "short")
	}
	start := b.clock.Now()
	long := enqueue(t, b, "long").ID
	arrived := map[string]time.Time{}
	for step := 0; step < 5000; step++ {
		b.clock.Advance(time.Millisecond)
		for k := 0; k < 2; k++ {
			arrived[enqueue(t, b, "short").ID] = b.clock.Now()
		}
		got := fetchIDs(t, b, "default", "w", 1)
		if got[0] == long {
			t.Logf("long job taken after %s", b.clock.Now().Sub(start))
			return
		}
		if late := arrived[got[0]].Sub(start); late > time.Duration(bound*float64(time.Millisecond)) {
			t.Fatalf("a short job that arrived %s after the long one overtook it (bound %.0f ms)", late, bound)
		}
	}
	t.Fatal("the long job starved")
}

func testShadow(t *testing.T, b *bundle) {
	must(t, b.c.SetPriors(b.ctx, "default", map[string]float64{"long": 100, "short": 10}))
	setRanking(t, b, ranking.ModeShadow, ranking.RuleFixed, 4)
	long := enqueue(t, b, "long").ID
	b.clock.Advance(time.Millisecond)
	short := enqueue(t, b, "short").ID
	got, err := b.s.Fetch(b.ctx, "default", "w", 2, time.Minute)
	must(t, err)
	if got[0].ID != long || got[1].ID != short || got[0].Predicted != 100 || got[1].Predicted != 10 {
		t.Fatalf("shadow: %+v", got)
	}
	for _, f := range got {
		_, err := b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: f.ID, Sample: store.Sample{Task: "t", Predicted: f.Predicted, Ran: 50 * time.Millisecond}}})
		must(t, err)
	}
	rep, err := b.c.RankingQuality(b.ctx, "default", 100)
	must(t, err)
	if rep.Overall.Samples != 2 || rep.Overall.MAEMs != 45 {
		t.Fatalf("quality %+v", rep.Overall)
	}
}

func testModeSwitch(t *testing.T, b *bundle) {
	must(t, b.c.SetPriors(b.ctx, "default", map[string]float64{"long": 100, "short": 10}))
	seen := map[string]bool{}
	total := 0
	modes := []ranking.Mode{ranking.ModeFIFO, ranking.ModeActive, ranking.ModeShadow, ranking.ModeActive}
	for round, mode := range modes {
		for i := 0; i < 50; i++ {
			enqueue(t, b, []string{"long", "short"}[i%2])
			total++
			b.clock.Advance(time.Millisecond)
		}
		setRanking(t, b, mode, ranking.RuleHRRN, 8)
		for _, id := range fetchIDs(t, b, "default", "w", 30+round) {
			if seen[id] {
				t.Fatalf("%s fetched twice", id)
			}
			seen[id] = true
		}
	}
	for {
		ids := fetchIDs(t, b, "default", "w", 100)
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("%s fetched twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != total {
		t.Fatalf("fetched %d of %d", len(seen), total)
	}
}

// After enough finished jobs whose run time grows with a cost hint, a new job is filed
// by its hint: a big one into a higher bucket, predicted above the task's mean.
func testCostModel(t *testing.T, b *bundle) {
	setRanking(t, b, ranking.ModeShadow, ranking.RuleHRRN, 16)
	for i := 0; i < 60; i++ {
		size := float64(100 * (1 + i%10))
		enqueue(t, b, "resize", job.Cost("bytes", size))
		got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
		must(t, err)
		_, err = b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: got[0].ID, Sample: store.Sample{
			Task: "resize", Ran: time.Duration(size) * time.Millisecond / 10, CostName: "bytes", Cost: size}}})
		must(t, err)
	}
	b.clock.Advance(3 * time.Second) // past the client's model cache
	small, err := b.s.Lane(b.ctx, "default", 5, "resize", map[string]float64{"bytes": 100}, 0)
	must(t, err)
	big, err := b.s.Lane(b.ctx, "default", 5, "resize", map[string]float64{"bytes": 1000}, 0)
	must(t, err)
	if !strings.Contains(small, " ~-") || !strings.Contains(big, " ~") || strings.Contains(big, " ~-") {
		t.Fatalf("lanes %q (small) and %q (big)", small, big)
	}
	enqueue(t, b, "resize", job.Cost("bytes", 1000))
	got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
	must(t, err)
	mean := stats(t, b)["resize"].MeanMs
	if got[0].Predicted <= mean*1.5 {
		t.Fatalf("a 1000-byte job predicted %.1f ms, the mean is %.1f", got[0].Predicted, mean)
	}
}

// The estimate replays the window: one slot, a long job then short ones arriving
// together: the active order finishes the shorts first, so its mean is lower.
func testEstimate(t *testing.T, b *bundle) {
	if e, err := sim.EstimateQueue(b.ctx, b.c, "default", 1); err != nil || e.Jobs != 0 {
		t.Fatalf("empty window: %+v %v", e, err)
	}
	setRanking(t, b, ranking.ModeShadow, ranking.RuleFixed, 8)
	var done []store.Done
	for i, task := range []string{"long", "short", "short", "short", "long", "short"} {
		ms := 10.0
		if task == "long" {
			ms = 200
		}
		h := enqueue(t, b, task)
		done = append(done, store.Done{ID: h.ID, Sample: store.Sample{Task: task, Ran: time.Duration(ms) * time.Millisecond,
			Enqueued: b.clock.Now().Add(time.Duration(i) * time.Millisecond), Started: b.clock.Now()}})
	}
	fetchIDs(t, b, "default", "w", 10)
	_, err := b.s.Ack(b.ctx, "default", "w", done)
	must(t, err)
	e, err := sim.EstimateQueue(b.ctx, b.c, "default", 1)
	must(t, err)
	if e.Jobs != 6 || !(e.ActiveMeanMs < e.FIFOMeanMs) {
		t.Fatalf("estimate %+v", e)
	}
	if _, err := sim.EstimateQueue(b.ctx, b.c, "default", 0); err == nil {
		t.Fatal("0 slots accepted")
	}
}

// Whatever the mode, rule, weight and lanes, a batch fetch takes the same jobs in the
// same order as one-by-one fetches at the same instant.
func testBatchEqualsSingle(t *testing.T, b *bundle) {
	r := rand.New(rand.NewPCG(7, 7))
	must(t, b.c.SetPriors(b.ctx, "default", map[string]float64{"a": 50, "b": 5, "c": 500}))
	configs := []ranking.Config{
		{Mode: ranking.ModeFIFO, Rule: ranking.RuleHRRN, W: 16, Alpha: 0.1},
		{Mode: ranking.ModeActive, Rule: ranking.RuleFixed, W: 0, Alpha: 0.1},
		{Mode: ranking.ModeActive, Rule: ranking.RuleFixed, W: 4, Alpha: 0.1},
		{Mode: ranking.ModeActive, Rule: ranking.RuleFixed, W: math.Inf(1), Alpha: 0.1},
		{Mode: ranking.ModeActive, Rule: ranking.RuleHRRN, W: 2, Alpha: 0.1},
		{Mode: ranking.ModeActive, Rule: ranking.RuleHRRN, W: 16, Alpha: 0.1},
		{Mode: ranking.ModeActive, Rule: ranking.RuleHRRN, W: math.Inf(1), Alpha: 0.1},
	}
	for round := 0; round < 21; round++ {
		cfg := configs[round%len(configs)]
		// one set of jobs, enqueued twice at the same virtual times
		type spec struct {
			task string
			est  time.Duration
			at   time.Duration
		}
		var specs []spec
		for i := 0; i < 60; i++ {
			sp := spec{task: []string{"a", "b", "c", "unknown"}[r.IntN(4)], at: time.Duration(r.IntN(40)*100) * time.Millisecond} // a coarse grid: many ties
			if r.IntN(4) == 0 {
				sp.est = time.Duration(1+r.IntN(800)) * time.Millisecond
			}
			specs = append(specs, sp)
		}
		sort.Slice(specs, func(i, j int) bool { return specs[i].at < specs[j].at })
		run := func(batch bool) []string {
			_, err := b.s.Purge(b.ctx, "default", "pending", 1000)
			must(t, err)
			must(t, b.s.Redis().Del(b.ctx, b.s.Keys("default").Active, b.s.Keys("default").Owners).Err())
			must(t, b.c.SetRanking(b.ctx, "default", cfg))
			start := b.clock.Now()
			for i, sp := range specs {
				lane, err := b.s.Lane(b.ctx, "default", 5, sp.task, nil, sp.est)
				must(t, err)
				b.clock.Set(start.Add(sp.at))
				must(t, b.s.Enqueue(b.ctx, "default", []store.NewJob{{ID: fmt.Sprintf("r%02dj%03d", round, i), Lane: lane, Record: []byte{0xc0}}}))
			}
			b.clock.Set(start.Add(5 * time.Second)) // every job waits; some heads are overdue
			var order []string
			for {
				n := 1
				if batch {
					n = 1 + r.IntN(9)
				}
				ids := fetchIDs(t, b, "default", "w", n)
				if len(ids) == 0 {
					break
				}
				order = append(order, ids...)
			}
			b.clock.Set(start)
			return order
		}
		one, many := run(false), run(true)
		if fmt.Sprint(one) != fmt.Sprint(many) {
			t.Fatalf("%+v: batch order differs from one-by-one\n one:  %v\n many: %v", cfg, one, many)
		}
		if len(one) != len(specs) {
			t.Fatalf("took %d of %d", len(one), len(specs))
		}
	}
}

// Under hrrn a lane without any prediction (no prior, nothing learned) competes on
// arrival; it is never starved by lanes that have one.
func testUnknownLane(t *testing.T, b *bundle) {
	setRanking(t, b, ranking.ModeActive, ranking.RuleHRRN, 16)
	unknown := enqueue(t, b, "unknown").ID
	for step := 0; step < 200; step++ {
		b.clock.Advance(time.Millisecond)
		enqueue(t, b, "known", job.Estimate(time.Millisecond))
		if got := fetchIDs(t, b, "default", "w", 1); got[0] == unknown {
			return
		}
	}
	t.Fatal("the job without a prediction starved")
}

// Task names that look like statistics fields ("*", "p:x") are ordinary tasks.
func testTaskNames(t *testing.T, b *bundle) {
	setRanking(t, b, ranking.ModeShadow, ranking.RuleHRRN, 16)
	must(t, b.c.SetPriors(b.ctx, "default", map[string]float64{"foo": 100}))
	for _, task := range []string{"p:foo", "*", "t:x", "a|b"} {
		enqueue(t, b, task)
		finish(t, b, 40)
	}
	s := stats(t, b)
	if s["p:foo"].Count != 1 || s["*"].Count != 1 || s[""].Count != 4 || s["foo"].Prior != 100 || s["a|b"].Count != 1 {
		t.Fatalf("stats %+v", s)
	}
	if _, err := b.c.EnqueueByName(b.ctx, "t", nil, job.Cost("a|b", 1)); !errors.Is(err, job.ErrInvalidOption) {
		t.Fatalf("cost name with '|': %v", err)
	}
	if err := b.c.SetRanking(b.ctx, "default", ranking.Config{Mode: ranking.ModeActive, Rule: ranking.RuleFixed, W: 1e308, Alpha: 0.1}); err == nil {
		t.Fatal("w 1e308 accepted")
	}
	lane, err := b.s.Lane(b.ctx, "default", 5, "t", map[string]float64{"bytes": -5}, 0)
	must(t, err)
	if lane != "5:t" {
		t.Fatalf("negative cost hint filed into %q", lane)
	}
}

// A job whose lease expired and that the same worker fetched again is recorded once,
// by the acknowledgement of its current lease.
func testRefetchOnce(t *testing.T, b *bundle) {
	setRanking(t, b, ranking.ModeShadow, ranking.RuleHRRN, 16)
	h := enqueue(t, b, "a", job.MaxRetries(3))
	first, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Second)
	must(t, err)
	b.clock.Advance(2 * time.Second)
	_, _, err = b.s.ReclaimExpired(b.ctx, "default", "gone")
	must(t, err)
	second, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
	must(t, err)
	if second[0].ID != h.ID {
		t.Fatal("not refetched")
	}
	smp := store.Sample{Task: "a", Ran: 10 * time.Millisecond}
	lost, err := b.s.Ack(b.ctx, "default", "w", []store.Done{
		{ID: h.ID, Started: first[0].At, Sample: smp}, {ID: h.ID, Started: second[0].At, Sample: smp}, {ID: h.ID, Started: second[0].At, Sample: smp}})
	must(t, err)
	if len(lost) != 2 || stats(t, b)["a"].Count != 1 || counts(t, b, "default").Processed != 1 {
		t.Fatalf("lost %v, stats %+v, counts %+v", lost, stats(t, b)["a"], counts(t, b, "default"))
	}
}
