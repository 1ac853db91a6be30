package fairshare

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestParseModeAndCheckWeight(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
		err  bool
	}{{"off", ModeOff, false}, {"lru", ModeLRU, false}, {"share", ModeShare, false}, {"", "", true}, {"fair", "", true}, {"Share", "", true}} {
		m, err := ParseMode(tc.in)
		if m != tc.want || (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrBadMode)) {
			t.Errorf("ParseMode(%q) = %q, %v", tc.in, m, err)
		}
	}
	for _, tc := range []struct {
		w  float64
		ok bool
	}{{1, true}, {0.01, true}, {100, true}, {2.5, true}, {0, false}, {-1, false}, {0.009, false}, {100.5, false},
		{math.NaN(), false}, {math.Inf(1), false}, {math.Inf(-1), false}} {
		err := CheckWeight(tc.w)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadWeight)) {
			t.Errorf("CheckWeight(%v) = %v", tc.w, err)
		}
	}
	m, _ := NewModel(ModeShare)
	if err := m.SetWeight("a", math.NaN()); err == nil {
		t.Error("SetWeight took NaN")
	}
	if _, err := NewModel(ModeOff); err == nil {
		t.Error("NewModel(off) has no order to model")
	}
}

// served runs jobs through a model on slots workers, each key backlogged with jobs of
// its own run time (ms, predicted exactly unless predicted says otherwise), and
// returns the worker time each key got while every key was still backlogged.
func served(t *testing.T, mode Mode, slots int, keys map[string]float64, predicted map[string]float64, weights map[string]float64, jobs int) map[string]float64 {
	t.Helper()
	m, err := NewModel(mode)
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range weights {
		if err := m.SetWeight(k, w); err != nil {
			t.Fatal(err)
		}
	}
	left := map[string]int{}
	for k := range keys {
		left[k] = jobs
		for range jobs {
			m.Arrive(k)
		}
	}
	type run struct {
		ch  Charge
		end float64
	}
	var running []run
	now := 0.0
	got := map[string]float64{}
	for {
		for len(running) < slots {
			if _, ok := m.Next(); !ok {
				break
			}
			k, _ := m.Next()
			p := keys[k]
			if pp, ok := predicted[k]; ok {
				p = pp
			}
			ch := m.Start(p)
			left[ch.Key]--
			running = append(running, run{ch, now + keys[ch.Key]})
		}
		if len(running) == 0 {
			return got
		}
		// the run that ends first
		first := 0
		for i, r := range running {
			if r.end < running[first].end {
				first = i
			}
		}
		r := running[first]
		running = append(running[:first], running[first+1:]...)
		now = r.end
		for _, n := range left {
			if n == 0 {
				return got // a key ran dry: shares are judged while all are backlogged
			}
		}
		got[r.ch.Key] += keys[r.ch.Key]
		m.Done(r.ch, keys[r.ch.Key])
	}
}

func TestShares(t *testing.T) {
	cases := []struct {
		name      string
		mode      Mode
		keys      map[string]float64 // run time of each key's jobs, ms
		predicted map[string]float64 // what the start charges, where not the run time
		weights   map[string]float64
		want      map[string]float64 // expected share of worker time
		tolerance float64
	}{
		{"share: 1 s jobs and 10 ms jobs get equal time", ModeShare, map[string]float64{"slow": 1000, "fast": 10}, nil, nil,
			map[string]float64{"slow": 0.5, "fast": 0.5}, 0.05},
		{"lru: the same keys get equal counts, so time goes 100:1", ModeLRU, map[string]float64{"slow": 1000, "fast": 10}, nil, nil,
			map[string]float64{"slow": 1000.0 / 1010, "fast": 10.0 / 1010}, 0.02},
		{"share: weight 2 gets twice the time", ModeShare, map[string]float64{"a": 5, "b": 5}, nil, map[string]float64{"a": 2},
			map[string]float64{"a": 2.0 / 3, "b": 1.0 / 3}, 0.02},
		{"share: a key whose jobs run 100× their prediction is corrected", ModeShare, map[string]float64{"liar": 1000, "honest": 10},
			map[string]float64{"liar": 10}, nil, map[string]float64{"liar": 0.5, "honest": 0.5}, 0.1},
		{"share: three keys of mixed sizes", ModeShare, map[string]float64{"a": 2, "b": 20, "c": 200}, nil, nil,
			map[string]float64{"a": 1.0 / 3, "b": 1.0 / 3, "c": 1.0 / 3}, 0.05},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := served(t, tc.mode, 1, tc.keys, tc.predicted, tc.weights, 5000)
			total := 0.0
			for _, v := range got {
				total += v
			}
			for k, want := range tc.want {
				if share := got[k] / total; math.Abs(share-want) > tc.tolerance {
					t.Errorf("key %s got %.3f of worker time, want %.3f ± %.2f (all: %v)", k, share, want, tc.tolerance, got)
				}
			}
		})
	}
}

// The stated bound, over random keys, weights, job sizes and arrival orders: while two
// keys are both backlogged, over every run of consecutive starts, the charges per
// weight they got differ by at most one job of each.
func TestStartTimeFairBound(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		m, _ := NewModel(ModeShare)
		nkeys := 2 + r.IntN(6)
		weight := map[string]float64{}
		size := map[string]func() float64{}
		pending := map[string]int{}
		maxCharge := map[string]float64{}
		for i := range nkeys {
			k := "k" + strconv.Itoa(i)
			weight[k] = []float64{0.5, 1, 1, 2, 3}[r.IntN(5)]
			_ = m.SetWeight(k, weight[k])
			lo, hi := 1+r.Float64()*10, 10+r.Float64()*500
			size[k] = func() float64 { return lo + r.Float64()*(hi-lo) }
			maxCharge[k] = hi
			pending[k] = 40 + r.IntN(80)
			for range pending[k] {
				m.Arrive(k)
			}
		}
		checkPairBound(t, seed, startWhileBacklogged(m, pending, size), weight, maxCharge, 0)
	}
}

// start is one job started: its key and charge.
type start struct {
	key string
	c   float64
}

// startWhileBacklogged starts jobs of m, each run exactly its charge (the bound is on
// charges), until one of its keys runs dry: the starts while every key is backlogged.
func startWhileBacklogged(m *Model, pending map[string]int, size map[string]func() float64) []start {
	var starts []start
	for {
		for _, n := range pending {
			if n == 0 {
				return starts
			}
		}
		k, _ := m.Next()
		c := size[k]()
		m.Done(m.Start(c), c)
		pending[k]--
		starts = append(starts, start{k, c})
	}
}

// checkPairBound checks every run of starts [i, j), for every pair of keys: their
// charges per weight differ by at most their largest charges per weight, plus extra.
func checkPairBound(t *testing.T, seed uint64, starts []start, weight, maxCharge map[string]float64, extra float64) {
	t.Helper()
	for i := range starts {
		got := map[string]float64{}
		for j := i; j < len(starts); j++ {
			got[starts[j].key] += starts[j].c / weight[starts[j].key]
			for f := range weight {
				for g := range weight {
					bound := maxCharge[f]/weight[f] + maxCharge[g]/weight[g] + extra
					if d := got[f] - got[g]; d > bound+1e-9 {
						t.Fatalf("seed %d, starts %d..%d: %s got %.3f per weight, %s %.3f: gap %.3f over the bound %.3f",
							seed, i, j, f, got[f], g, got[g], d, bound)
					}
				}
			}
		}
	}
}

// A key that was idle gets no credit for its idleness: it starts at the band's virtual
// time, next in line but not ahead by what it did not use.
func TestIdleKeyBanksNoCredit(t *testing.T) {
	m, _ := NewModel(ModeShare)
	for range 100 {
		m.Arrive("busy")
	}
	for range 50 {
		ch := m.Start(10)
		m.Done(ch, 10)
	}
	for range 10 {
		m.Arrive("late")
	}
	tag, v := m.Tag("late")
	if tag != v || v == 0 {
		t.Fatalf("a newly backlogged key starts at tag %v, virtual time %v: want equal and past 0", tag, v)
	}
	if k, _ := m.Next(); k != "late" {
		t.Fatalf("next is %q, want the newly backlogged key", k)
	}
	// then the two alternate: the late key is owed no run of jobs
	var order string
	for range 6 {
		ch := m.Start(10)
		m.Done(ch, 10)
		order += ch.Key[:1]
	}
	if order != "lblblb" {
		t.Fatalf("order after the late key came: %s, want alternating", order)
	}
}

// A band with nothing backlogged resets: keys with no jobs and no weight set leave the
// model (their memory is reclaimed), and the virtual time starts again at 0.
func TestIdleBandForgetsKeys(t *testing.T) {
	m, _ := NewModel(ModeShare)
	_ = m.SetWeight("configured", 2)
	for i := range 1000 {
		m.Arrive("k" + strconv.Itoa(i))
	}
	m.Arrive("configured")
	for {
		if _, ok := m.Next(); !ok {
			break
		}
		m.Start(5)
	}
	if n := m.Keys(); n != 1 {
		t.Fatalf("%d keys held after the band went idle, want 1 (the one with a weight)", n)
	}
	if _, v := m.Tag("configured"); v != 0 {
		t.Fatalf("virtual time %v after idle, want 0", v)
	}
}

// The quantum: jobs far shorter than QuantumMs go several per visit (runs of about
// QuantumMs of charge per weight), jobs of QuantumMs or more one per visit, and the
// pairwise bound holds with twice QuantumMs added (each key of a pair may be up to a
// quantum into a visit at either end of a run), over random keys, weights and sizes.
func TestQuantumBound(t *testing.T) {
	order := func(c float64) string {
		m, _ := NewModel(ModeShare)
		for range 40 {
			m.Arrive("a")
			m.Arrive("b")
		}
		var s string
		for range 24 {
			k, _ := m.Next()
			m.Start(c)
			s += k
		}
		return s
	}
	if got := order(0.125); got != "aaaaaaaabbbbbbbbaaaaaaaa" {
		t.Errorf("0.125 ms jobs: %s, want runs of 8 (1 ms of charge)", got)
	}
	if got := order(QuantumMs); got != "abababababababababababab" {
		t.Errorf("%v ms jobs: %s, want one per visit", float64(QuantumMs), got)
	}
	for seed := uint64(1); seed <= 30; seed++ {
		r := rand.New(rand.NewPCG(seed, 11))
		m, _ := NewModel(ModeShare)
		weight, maxCharge, pending := map[string]float64{}, map[string]float64{}, map[string]int{}
		size := map[string]func() float64{}
		for i := range 2 + r.IntN(5) {
			k := "k" + strconv.Itoa(i)
			weight[k] = []float64{0.5, 1, 2, 3}[r.IntN(4)]
			_ = m.SetWeight(k, weight[k])
			hi := []float64{0.02, 0.3, 2, 40}[r.IntN(4)]
			size[k] = func() float64 { return 0.01 + r.Float64()*(hi-0.01) }
			maxCharge[k] = hi
			pending[k] = 100 + r.IntN(100)
			for range pending[k] {
				m.Arrive(k)
			}
		}
		checkPairBound(t, seed, startWhileBacklogged(m, pending, size), weight, maxCharge, 2*QuantumMs)
	}
}
