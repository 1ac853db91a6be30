package store

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/ranking"
)

// The fuzz targets below read what the store reads back from Redis: lane members,
// hand-off entries, and the statistics the scripts keep (task stats, the quality
// window, the activity ring, the ranking settings, the cost models). Redis holds
// whatever was written there (by an older version, by hand, damaged): a reader must
// not panic, and what it returns must keep the bounds its callers rely on. Where Go
// writes the entry, it must read back as written.

// FuzzLaneMember: ParseLaneMember and LaneEstimate read any member without panicking;
// a member they take names a priority 0-9 and a task without a space, and starts with
// what LaneMember writes for them; an estimate is never negative. The lanes Go writes
// read back as written, and an estimate lane carries its estimate within 9%.
func FuzzLaneMember(f *testing.F) {
	for _, m := range []string{"5:emails.send", "0:x", "9:a:b", "5:t =80", "5:t ~3", "5:t =-80", "5:t =", "5:t =x",
		"", ":", "10:t", "a:t", "5", "5:", "5:t =344", "5:t =-99999999999", " =8", "5:日本 =8"} {
		f.Add(m, 5, "emails.send", int64(90*time.Second))
	}
	f.Add("", 0, "x", int64(1))
	f.Add("", 9, "a:b|c", int64(job.MaxHorizon))
	f.Fuzz(func(t *testing.T, m string, priority int, task string, estimate int64) {
		if p, tk, err := ParseLaneMember(m); err == nil {
			if p < 0 || p > 9 || strings.Contains(tk, " ") || !strings.HasPrefix(m, LaneMember(p, tk)) {
				t.Fatalf("ParseLaneMember(%q) = %d, %q", m, p, tk)
			}
		}
		if d := LaneEstimate(m); d < 0 {
			t.Fatalf("LaneEstimate(%q) = %v, a negative estimate", m, d)
		}
		priority = min(max(priority, 0), 9)
		if job.ValidateTaskName(task) != nil {
			return
		}
		if p, tk, err := ParseLaneMember(LaneMember(priority, task)); err != nil || p != priority || tk != task {
			t.Fatalf("ParseLaneMember(LaneMember(%d, %q)) = %d, %q, %v", priority, task, p, tk, err)
		}
		if LaneEstimate(LaneMember(priority, task)) != 0 {
			t.Fatalf("the plain lane of %q carries an estimate", task)
		}
		est := time.Duration(estimate)
		if est < time.Millisecond || est > job.MaxHorizon {
			return // below 1 ms the lane rounds up to 1 µs buckets; over MaxHorizon no job has it
		}
		lane := EstimateLane(priority, task, est)
		if p, tk, err := ParseLaneMember(lane); err != nil || p != priority || tk != task {
			t.Fatalf("ParseLaneMember(EstimateLane(%d, %q, %v)) = %d, %q, %v", priority, task, est, p, tk, err)
		}
		if got := LaneEstimate(lane); math.Abs(float64(got)/float64(est)-1) > 0.09 {
			t.Fatalf("LaneEstimate(%q) = %v, not within 9%% of %v", lane, got, est)
		}
	})
}

// FuzzParseHandOff: ParseHandOff reads any ready entry without panicking, and an entry
// it takes ("id|lease start ms|lease ms|lane score|lane\nrecord", as enqueue_one.lua
// writes it) reads as what it says: no number wraps around on the way.
func FuzzParseHandOff(f *testing.F) {
	for _, e := range []string{
		"01JH0000000000000000000000|1767225600000|30000|1767225600000|5:emails.send\n\x85\xa1t",
		"id|1|2|3.5|5:t =80\nrec", "id|1|2|3|lane", "id|1|2|3", "|||\n", "a|b|c|d|e\nf", "id|1|2|NaN|l",
		"id|1|9223372036854|3|l\nr", "id|-1|-1|-1e18|l\nr", "id|1|2|3|l|x\nr|y\nz", "",
		"id|1|2|3|5:t\x1fkey\x1f000000000000003\nrec", // a fair-placed job
	} {
		f.Add(e)
	}
	s := New(nil, "t", nil)
	f.Fuzz(func(t *testing.T, entry string) {
		w, err := s.ParseHandOff("q", entry)
		if err != nil {
			if w.HandOff != nil || w.Queue != "" {
				t.Fatalf("ParseHandOff(%q) failed (%v) but returned %+v", entry, err, w)
			}
			return
		}
		parts := strings.SplitN(entry, "|", 5)
		ms, _ := strconv.ParseInt(parts[1], 10, 64)
		lease, _ := strconv.ParseInt(parts[2], 10, 64)
		due, _ := strconv.ParseFloat(parts[3], 64)
		line, record, _ := strings.Cut(parts[4], "\n")
		lane, _, fair := splitPlace(line) // a place: its lane, and the fair set it came from
		h := w.HandOff
		switch {
		case w.Queue != "q" || h == nil || h.ID != parts[0] || h.Lane != lane || h.Fair != fair || string(h.Record) != record:
			t.Fatalf("ParseHandOff(%q) = %+v %+v", entry, w, h)
		case w.HandedAt.UnixMilli() != ms || !h.At.Equal(w.HandedAt):
			t.Fatalf("ParseHandOff(%q): handed at %d ms, want %d", entry, w.HandedAt.UnixMilli(), ms)
		case w.HandOffLease.Milliseconds() != lease || lease > 0 && w.HandOffLease <= 0:
			t.Fatalf("ParseHandOff(%q): lease %v, want %d ms", entry, w.HandOffLease, lease)
		case !(math.Abs(due) < 1<<63) || h.Due.UnixMilli() != int64(due):
			t.Fatalf("ParseHandOff(%q): due %v (%d ms), want %v ms", entry, h.Due, h.Due.UnixMilli(), due)
		}
	})
}

// fuzzStore is a store on the package's Redis whose clock is now, with queue q's keys
// emptied before each input.
type fuzzStore struct {
	*Store
	k Keys
}

func newFuzzStore(f *testing.F, now time.Time) *fuzzStore {
	s := New(redistest.Client(f), "fz", func() time.Time { return now })
	return &fuzzStore{s, s.Keys("q")}
}

func (s *fuzzStore) reset(t *testing.T) {
	k := s.k
	if err := s.rdb.Del(context.Background(), k.TaskStats, k.Window, k.Activity, k.Rank, k.Models).Err(); err != nil {
		t.Fatal(err)
	}
}

// FuzzTaskStats: TaskStats reads any hash fields without an error, each task once, in
// name order, with finite means, deviations and priors at least 0; a prior SetPriors
// takes reads back as set.
func FuzzTaskStats(f *testing.F) {
	f.Add("t:emails.send", "12|350.5|1200.25", "*", "40|120|50", "emails.send", 250.0)
	f.Add("t:x", "1|NaN|-4", "p:x", "inf", "x", 1e-300)
	f.Add("t:", "a|b|c", "p:y", "-1", "y", math.Inf(1))
	f.Add("t:x|y", "1|2", "other", "1|2|3", "", float64(ranking.MaxPriorMs))
	f.Add("p:x", "1e309", "t:x", "9223372036854775808|1e308|1e308", "x|y", math.NaN())
	s := newFuzzStore(f, time.Now())
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, f1, v1, f2, v2, task string, prior float64) {
		s.reset(t)
		if err := s.rdb.HSet(ctx, s.k.TaskStats, f1, v1, f2, v2).Err(); err != nil {
			t.Fatal(err)
		}
		priorSet := ranking.ValidatePriors(map[string]float64{task: prior}) == nil
		if err := s.SetPriors(ctx, "q", map[string]float64{task: prior}); (err == nil) != priorSet {
			t.Fatalf("SetPriors(%q: %v): %v; ValidatePriors says %v", task, prior, err, priorSet)
		}
		stats, err := s.TaskStats(ctx, "q")
		if err != nil {
			t.Fatalf("TaskStats over %q=%q, %q=%q: %v", f1, v1, f2, v2, err)
		}
		seen := false
		for i, ts := range stats {
			if i > 0 && stats[i-1].Task >= ts.Task {
				t.Fatalf("TaskStats not in name order, or a task twice: %+v", stats)
			}
			for _, x := range []float64{ts.MeanMs, ts.StdMs, ts.Prior} {
				if !(x >= 0) || math.IsInf(x, 0) {
					t.Fatalf("TaskStats over %q=%q, %q=%q: %+v", f1, v1, f2, v2, ts)
				}
			}
			if priorSet && ts.Task == task {
				seen = true
				if ts.Prior != prior {
					t.Fatalf("prior of %q set to %v, read as %v", task, prior, ts.Prior)
				}
			}
		}
		if priorSet && !seen {
			t.Fatalf("prior of %q set to %v, not read back: %+v", task, prior, stats)
		}
	})
}

// FuzzWindow: Window reads any list entries without an error, keeping only samples
// with a finite run time at least 0 and a finite prediction at least 0; a sample Go
// writes reads back as written (to the µs the entry keeps), whatever its task holds.
func FuzzWindow(f *testing.F) {
	f.Add("emails.send|120.500|98.250|1767225600000|1767225600100", "emails.send", 120.5, int64(98250*time.Microsecond), int64(1767225600000), int64(1767225600100))
	f.Add("a|b|c|d|e", "a|b|c", 0.0, int64(0), int64(0), int64(0))
	f.Add("t||1|2|3", "t\n", math.NaN(), int64(-1), int64(-1), int64(1<<62))
	f.Add("t|Inf|+Inf|2|3", "", math.Inf(1), int64(1<<62), int64(-1<<62), int64(0))
	f.Add("t|1|-0.001|2|3", "日本", 1e300, int64(time.Hour), int64(1), int64(2))
	f.Add("|||", "x", -5.0, int64(1), int64(1), int64(1))
	s := newFuzzStore(f, time.Now())
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw, task string, predicted float64, ran, enqueued, started int64) {
		s.reset(t)
		in := Sample{Task: task, Predicted: predicted, Ran: time.Duration(ran), Enqueued: time.UnixMilli(enqueued), Started: time.UnixMilli(started)}
		enc := in.encode()
		if err := s.rdb.RPush(ctx, s.k.Window, enc, raw).Err(); err != nil {
			t.Fatal(err)
		}
		got, err := s.Window(ctx, "q", 10)
		if err != nil {
			t.Fatalf("Window over %q, %q: %v", enc, raw, err)
		}
		for _, g := range got {
			if !(g.Actual >= 0) || math.IsInf(g.Actual, 0) || !(g.Predicted >= 0) || math.IsInf(g.Predicted, 0) {
				t.Fatalf("Window over %q, %q: %+v", enc, raw, g)
			}
		}
		if task == "" || in.Ran < 0 {
			return // no sample (no task), or one the window leaves out (negative run time)
		}
		if len(got) == 0 {
			t.Fatalf("the sample %q (%+v) did not read back", enc, in)
		}
		g := got[0]
		wantPred := 0.0
		if predicted > 0 && !math.IsInf(predicted, 1) {
			wantPred, _ = strconv.ParseFloat(strconv.FormatFloat(predicted, 'f', 3, 64), 64)
		}
		wantRan := float64(in.Ran.Microseconds()) / 1000
		if g.Task != task || g.Predicted != wantPred || math.Abs(g.Actual-wantRan) > 1e-9*max(1, wantRan) ||
			g.Enqueued != in.Enqueued.UnixMilli() || g.Started != in.Started.UnixMilli() {
			t.Fatalf("the sample %q read back as %+v; want task %q, predicted %v, ran %v ms, enqueued %d, started %d",
				enc, g, task, wantPred, wantRan, in.Enqueued.UnixMilli(), in.Started.UnixMilli())
		}
	})
}

// FuzzActivity: Activity reads any ring fields without an error, as n minutes in
// order ending with the current one; tallies AddActivity adds for the current minute
// read back as added.
func FuzzActivity(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 30, 15, 0, time.UTC)
	minute := strconv.FormatInt(now.UnixMilli()/60000, 10)
	f.Add("m30", minute+"|1|2|3|400|5|600", 5, int64(3), int64(1), int64(0), int64(1200), int64(3), int64(900))
	f.Add("m29", "0|1|2|3|4|5|6", 60, int64(0), int64(0), int64(0), int64(0), int64(0), int64(0))
	f.Add("m1", "-9223372036854775808|1|2|3|4|5|6", 1, int64(1), int64(2), int64(3), int64(4), int64(5), int64(6))
	f.Add("x", "9223372036854775807|a|b|c|d|e|f", 0, int64(1<<30), int64(1<<30), int64(1<<30), int64(1<<40), int64(1<<30), int64(1<<40))
	f.Add("m30", minute+"|1|2", 1000, int64(1), int64(1), int64(1), int64(1), int64(1), int64(1))
	s := newFuzzStore(f, now)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, field, value string, n int, succeeded, failed, retried, waitSum, waitN, waitMax int64) {
		s.reset(t)
		if err := s.rdb.HSet(ctx, s.k.Activity, field, value).Err(); err != nil {
			t.Fatal(err)
		}
		mins, err := s.Activity(ctx, "q", n)
		if err != nil {
			t.Fatalf("Activity over %q=%q: %v", field, value, err)
		}
		want := min(max(n, 1), ActivityMinutes)
		if len(mins) != want {
			t.Fatalf("Activity(%d) over %q=%q: %d minutes, want %d", n, field, value, len(mins), want)
		}
		cur := now.Truncate(time.Minute)
		for i, m := range mins {
			if !m.Start.Equal(cur.Add(-time.Duration(len(mins)-1-i) * time.Minute)) {
				t.Fatalf("Activity(%d) over %q=%q: minute %d starts %v (current minute %v)", n, field, value, i, m.Start, cur)
			}
		}
		// tallies a worker flushes: counts and ms sums a minute can hold (within the
		// scripts' exact integers, 2^53)
		bound := func(x int64) int64 { return max(x, -x, 0) % (1 << 40) }
		add := Minute{Start: now, Succeeded: bound(succeeded), Failed: bound(failed), Retried: bound(retried),
			WaitSum: time.Duration(bound(waitSum)) * time.Millisecond, WaitCount: bound(waitN), WaitMax: time.Duration(bound(waitMax)) * time.Millisecond}
		s.reset(t)
		if err := s.AddActivity(ctx, "q", []Minute{add}); err != nil {
			t.Fatal(err)
		}
		mins, err = s.Activity(ctx, "q", 1)
		if err != nil {
			t.Fatal(err)
		}
		got := mins[0]
		got.Start = add.Start
		if got != add {
			t.Fatalf("added %+v, read back %+v", add, got)
		}
	})
}

// FuzzRankingSettings: Ranking reads any settings hash without an error, with a W and
// an alpha SetRanking would take (a bad one reads as its default); settings SetRanking
// takes read back as set.
func FuzzRankingSettings(f *testing.F) {
	f.Add("active", "fixed", "8", "0.1", uint8(2), uint8(0), 8.0, 0.1)
	f.Add("shadow", "hrrn", "inf", "1", uint8(1), uint8(1), math.Inf(1), 1.0)
	f.Add("weird", "", "NaN", "-1", uint8(0), uint8(1), math.NaN(), 0.0)
	f.Add("", "x", "1e7", "+Inf", uint8(9), uint8(9), 1e6, 5e-324)
	f.Add("fifo", "fixed", "-0", "0x1p-2", uint8(0), uint8(0), math.Copysign(0, -1), math.Inf(1))
	s := newFuzzStore(f, time.Now())
	ctx := context.Background()
	modes := []ranking.Mode{ranking.ModeFIFO, ranking.ModeShadow, ranking.ModeActive}
	rules := []ranking.Rule{ranking.RuleFixed, ranking.RuleHRRN}
	f.Fuzz(func(t *testing.T, mode, rule, w, alpha string, mi, ri uint8, wv, av float64) {
		s.reset(t)
		if err := s.rdb.HSet(ctx, s.k.Rank, "mode", mode, "rule", rule, "w", w, "alpha", alpha).Err(); err != nil {
			t.Fatal(err)
		}
		c, err := s.Ranking(ctx, "q")
		if err != nil {
			t.Fatalf("Ranking over mode=%q rule=%q w=%q alpha=%q: %v", mode, rule, w, alpha, err)
		}
		check := ranking.DefaultConfig()
		check.W, check.Alpha = c.W, c.Alpha
		if err := check.Validate(); err != nil {
			t.Fatalf("Ranking over w=%q alpha=%q reads %+v: %v", w, alpha, c, err)
		}
		in := ranking.Config{Mode: modes[int(mi)%len(modes)], Rule: rules[int(ri)%len(rules)], W: wv, Alpha: av}
		err = s.SetRanking(ctx, "q", in)
		if (err == nil) != (in.Validate() == nil) {
			t.Fatalf("SetRanking(%+v): %v; Validate says %v", in, err, in.Validate())
		}
		if err != nil {
			return
		}
		got, err := s.Ranking(ctx, "q")
		if err != nil || got != in { // -0 equals 0 here, as it does for the scripts
			t.Fatalf("SetRanking(%+v), read back %+v, %v", in, got, err)
		}
	})
}

// FuzzLaneCostModel: Lane files a job with a cost hint in its task's lane or in one
// of that lane's cost buckets, whatever the task's stored cost model holds: the lane
// parses back to the job's priority and task, carries no estimate, and its bucket is
// within ±MaxCostBucket.
func FuzzLaneCostModel(f *testing.F) {
	f.Add("bytes|40|120.5|400|800.25|2400", "bytes", 1024.0, 5, "reports.build")
	f.Add("bytes|20|1|1|1|1", "bytes", 0.0, 0, "t")
	f.Add("a|b|NaN|1|2|3|4", "a|b", math.Inf(1), 9, "t")
	f.Add("bytes|1e308|-1e308|1e308|1e308|1e308", "bytes", 1e308, 3, "x")
	f.Add("x|100|0|0|0|0", "x", -1.0, 7, "t")
	f.Add("|||||", "", math.NaN(), 1, "t")
	s := newFuzzStore(f, time.Now())
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, model, costName string, cost float64, priority int, task string) {
		if job.ValidateTaskName(task) != nil {
			return
		}
		priority = min(max(priority, 0), 9)
		s.reset(t)
		if err := s.rdb.HSet(ctx, s.k.Rank, "mode", string(ranking.ModeActive)).Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.rdb.HSet(ctx, s.k.Models, task, model).Err(); err != nil {
			t.Fatal(err)
		}
		fresh := New(s.rdb, "fz", nil) // no cached models
		lane, err := fresh.Lane(ctx, "q", priority, task, map[string]float64{costName: cost}, 0)
		if err != nil {
			t.Fatalf("Lane with model %q, cost %q=%v: %v", model, costName, cost, err)
		}
		p, tk, err := ParseLaneMember(lane)
		if err != nil || p != priority || tk != task || LaneEstimate(lane) != 0 {
			t.Fatalf("Lane with model %q, cost %q=%v: %q (%d, %q, %v)", model, costName, cost, lane, p, tk, err)
		}
		if rest := strings.TrimPrefix(lane, LaneMember(priority, task)); rest != "" {
			b, err := strconv.Atoi(strings.TrimPrefix(rest, " ~"))
			if err != nil || !strings.HasPrefix(rest, " ~") || b == 0 || b < -MaxCostBucket || b > MaxCostBucket {
				t.Fatalf("Lane with model %q, cost %q=%v: %q", model, costName, cost, lane)
			}
		}
	})
}
