package worker

import (
	"strings"
	"testing"
	"time"
)

// TestScaleRule drives the rule round by round: each case is a run of rounds with the
// size each must leave.
func TestScaleRule(t *testing.T) {
	ms := time.Millisecond
	filled := scaleTick{Filled: true}
	idle := scaleTick{Idle: true}
	win := func(p50 time.Duration, attempts, errors int) runWindow {
		return runWindow{Attempts: attempts, Errors: errors, P50: p50}
	}
	filledWith := func(w runWindow) scaleTick { return scaleTick{Filled: true, Window: w} }
	type round struct {
		t    scaleTick
		want int
		why  string // a part of the reason the rule gives, when the size changes
	}
	times := func(n int, r round) []round {
		out := make([]round, n)
		for i := range out {
			out[i] = r
		}
		return out
	}
	cat := func(rs ...[]round) []round {
		var out []round
		for _, r := range rs {
			out = append(out, r...)
		}
		return out
	}
	cases := []struct {
		name   string
		a      Autoscale
		start  int
		rounds []round
	}{
		{"grows by one while work waits, up to Max", Autoscale{2, 4}, 2, []round{
			{filled, 3, "work waits"}, {filled, 4, "work waits"}, {filled, 4, ""}, {filled, 4, ""}}},
		{"holds while the fetch leaves slots free but some were all busy", Autoscale{2, 8}, 4, times(20, round{scaleTick{}, 4, ""})},
		{"grows with no run time known yet (jobs longer than a round)", Autoscale{1, 3}, 1, []round{
			{filled, 2, ""}, {filledWith(win(0, 8, 0)), 3, ""}}},
		{"no growth while the median is past 1.5× the best, growth once back within", Autoscale{1, 10}, 4, []round{
			{filledWith(win(10*ms, 8, 0)), 5, "run times hold"},
			{filledWith(win(16*ms, 8, 0)), 5, ""},
			{filled, 5, ""}, // no new window: the last one still says no
			{filledWith(win(15*ms, 8, 0)), 6, ""},
		}},
		{"a median past 2× the best cuts a quarter, then waits for a window", Autoscale{1, 10}, 8, []round{
			{filledWith(win(10*ms, 8, 0)), 9, ""},
			{filledWith(win(21*ms, 8, 0)), 7, "past 2× the best"},
			{filled, 7, ""},
			{filled, 7, ""},
			{filledWith(win(18*ms, 8, 0)), 8, ""}, // the new best
			{filledWith(win(30*ms, 8, 0)), 8, ""}, // 1.67× the new best: hold, no cut
			{filledWith(win(37*ms, 8, 0)), 6, "median run time 37ms"},
		}},
		{"the cut is at least one slot and never below Min", Autoscale{2, 10}, 3, []round{
			{filledWith(win(10*ms, 8, 0)), 4, ""},
			{filledWith(win(50*ms, 8, 0)), 3, "past"},
			{scaleTick{Window: win(10*ms, 8, 0)}, 3, ""}, // the new best
			{scaleTick{Window: win(50*ms, 8, 0)}, 2, "past"},
			{scaleTick{Window: win(10*ms, 8, 0)}, 2, ""},
			{scaleTick{Window: win(50*ms, 8, 0)}, 2, ""}, // at Min: no change, no reason
		}},
		{"below a millisecond a median's rise is noise", Autoscale{1, 10}, 5, []round{
			{filledWith(win(20*time.Microsecond, 8, 0)), 6, ""},
			{filledWith(win(900*time.Microsecond, 8, 0)), 7, ""},
			{filledWith(win(2100*time.Microsecond, 8, 0)), 6, "past 2×"},
		}},
		{"the error rate doubled cuts a quarter; a steady rate stops cutting", Autoscale{1, 100}, 64, cat(
			[]round{{scaleTick{Window: win(10*ms, 20, 0)}, 64, ""}},
			[]round{{scaleTick{Window: win(10*ms, 20, 10)}, 48, "error rate 50% over twice the recent 0%"}},
			[]round{{scaleTick{Window: win(10*ms, 20, 10)}, 36, "error rate"}},
			[]round{{scaleTick{Window: win(10*ms, 20, 10)}, 27, "error rate"}},
			times(5, round{scaleTick{Window: win(10*ms, 20, 10)}, 27, ""}),
		)},
		{"errors cut even while work waits", Autoscale{1, 100}, 8, []round{
			{filledWith(win(10*ms, 40, 1)), 9, ""},
			{filledWith(win(10*ms, 40, 6)), 7, "error rate 15%"},
		}},
		{"a stray failure or two does not cut", Autoscale{1, 100}, 8, []round{
			{scaleTick{Window: win(10*ms, 8, 2)}, 8, ""},
			{scaleTick{Window: win(10*ms, 8, 2)}, 8, ""},
		}},
		{"ten idle rounds cut a quarter, only idle slots", Autoscale{2, 64}, 8, cat(
			times(9, round{idle, 8, ""}),
			[]round{{idle, 6, "idle for 10 rounds"}},
			times(9, round{idle, 6, ""}),
			[]round{{idle, 5, ""}},
			times(9, round{scaleTick{Idle: true, Busy: 4}, 5, ""}),
			[]round{{scaleTick{Idle: true, Busy: 4}, 5, ""}}, // one free slot stays
			times(9, round{scaleTick{Idle: true, Busy: 1}, 5, ""}),
			[]round{{scaleTick{Idle: true, Busy: 1}, 4, ""}},
		)},
		{"idle down to Min, never below", Autoscale{3, 64}, 4, cat(
			times(10, round{idle, 4, ""})[:9], []round{{idle, 3, ""}},
			times(30, round{idle, 3, ""}),
		)},
		{"a busy round restarts the idle count", Autoscale{1, 64}, 8, cat(
			times(9, round{idle, 8, ""}), []round{{scaleTick{}, 8, ""}},
			times(9, round{idle, 8, ""}), []round{{idle, 6, ""}},
		)},
		{"an idle round does not grow on a stale fill", Autoscale{1, 64}, 4, []round{{scaleTick{Filled: true, Idle: true}, 4, ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newScaleRule(tc.a)
			size := tc.start
			for i, rd := range tc.rounds {
				n, why := r.next(size, rd.t)
				if n != rd.want {
					t.Fatalf("round %d (%+v): size %d -> %d (%q), want %d", i, rd.t, size, n, why, rd.want)
				}
				if (n != size) != (why != "") {
					t.Fatalf("round %d: size %d -> %d with reason %q", i, size, n, why)
				}
				if rd.why != "" && !strings.Contains(why, rd.why) {
					t.Fatalf("round %d: reason %q, want it to say %q", i, why, rd.why)
				}
				size = n
			}
		})
	}
}

// The run-time buckets keep a median within a quarter of its value, in order.
func TestRunBuckets(t *testing.T) {
	prev := -1
	for d := 4 * time.Microsecond; d < 24*time.Hour; d = d*9/8 + time.Microsecond {
		b := runBucket(d)
		if b < prev {
			t.Fatalf("bucket of %s is %d, below the bucket of a shorter run (%d)", d, b, prev)
		}
		prev = b
		if mid := bucketMid(b); mid < d*3/4 || mid > d*5/4 {
			t.Fatalf("%s lands in bucket %d, whose middle is %s", d, b, mid)
		}
	}
	if b := runBucket(1 << 62); b != runBuckets-1 {
		t.Fatalf("the longest run lands in bucket %d, want the last, %d", b, runBuckets-1)
	}
}

// A window closes once it holds windowAttempts attempts, with their median run time
// and failures, and the next one starts empty.
func TestScalerWindow(t *testing.T) {
	s := newScaler(Autoscale{1, 4})
	for i := range windowAttempts - 1 {
		s.Observe(Attempt{Ran: time.Duration(i+1) * 10 * time.Millisecond, Outcome: OutcomeSucceeded})
	}
	if w := s.window(); w != (runWindow{}) {
		t.Fatalf("a window of %d attempts closed: %+v", windowAttempts-1, w)
	}
	s.Observe(Attempt{Ran: 500 * time.Millisecond, Outcome: OutcomeRetried})
	s.Observe(Attempt{Outcome: OutcomeFailed}) // decided before its handler ran: no run time
	w := s.window()
	// run times 10..70ms and 500ms: the median is 40ms
	if w.Attempts != windowAttempts+1 || w.Errors != 2 || w.P50 < 30*time.Millisecond || w.P50 > 50*time.Millisecond {
		t.Fatalf("window %+v, want %d attempts, 2 errors, a median near 40ms", w, windowAttempts+1)
	}
	if s.attempts.Load() != 0 || s.errors.Load() != 0 || s.window() != (runWindow{}) {
		t.Fatal("the next window is not empty")
	}
}

// TestScaleRuleOnModelLoads runs the rule for 600 rounds against model loads whose
// median run time follows from the slot count while a backlog waits (every round
// filled, one window a round), as docs/limits.md reports them:
//
//   - I/O-bound (the run time does not depend on the slots): one slot a round, from
//     Min to Max in Max−Min rounds, and it stays there;
//   - CPU-bound on 8 cores (run time × slots/8 past 8 slots): it settles at 13
//     slots and stays, where a best over the last 30 or 60 windows crept up to Max
//     (in 140 and 260 rounds: the best forgets the run time of fewer slots);
//   - the same work turning 3× slower at round 300: one cut, then it settles again
//     near twice the cores, neither at Min nor at Max.
func TestScaleRuleOnModelLoads(t *testing.T) {
	cpu := func(slow float64) func(int) time.Duration {
		return func(size int) time.Duration {
			return time.Duration(slow * float64(10*time.Millisecond) * max(1, float64(size)/8))
		}
	}
	run := func(from, to int, size int, r *scaleRule, p50 func(int) time.Duration) (int, int, int) {
		lo, hi := r.max, r.min
		for range to - from {
			size, _ = r.next(size, scaleTick{Filled: true, Busy: size, Window: runWindow{Attempts: 100, P50: p50(size)}})
			lo, hi = min(lo, size), max(hi, size)
		}
		return size, lo, hi
	}
	a := Autoscale{Min: 4, Max: 64}

	r := newScaleRule(a)
	size, _, _ := run(0, 60, 4, &r, func(int) time.Duration { return 50 * time.Millisecond })
	if size != 64 {
		t.Errorf("I/O-bound: %d slots after 60 rounds, want 64", size)
	}
	if size, lo, _ := run(60, 600, size, &r, func(int) time.Duration { return 50 * time.Millisecond }); size != 64 || lo != 64 {
		t.Errorf("I/O-bound: down to %d slots, %d at the end, want 64 throughout", lo, size)
	}

	r = newScaleRule(a)
	size, _, _ = run(0, 60, 4, &r, cpu(1))
	if size, lo, hi := run(60, 600, size, &r, cpu(1)); lo != 13 || hi != 13 || size != 13 {
		t.Errorf("CPU-bound on 8 cores: %d to %d slots, %d at the end, want 13 throughout", lo, hi, size)
	}

	size, _, _ = run(600, 900, 13, &r, cpu(3))
	if size, lo, hi := run(900, 1200, size, &r, cpu(3)); lo < 9 || hi > 16 || size != hi {
		t.Errorf("3× slower work: %d to %d slots, %d at the end, want it settled within 9 to 16", lo, hi, size)
	}
}
