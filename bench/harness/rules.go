package harness

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/sim"
	"github.com/redis/go-redis/v9"
)

// Workload is a named trace and its slot count.
type Workload struct {
	Name  string
	Slots int
	Trace []sim.Job
}

// RuleWorkloads are the workloads the rules are compared on (docs/ranking.md).
func RuleWorkloads(n int, seeds []uint64) []Workload {
	var out []Workload
	for _, seed := range seeds {
		for _, c := range []struct {
			slots int
			load  float64
		}{{1, 0.8}, {1, 0.9}, {10, 0.8}, {10, 0.9}} {
			tr := sim.SeedWorkload(n, c.slots, c.load, seed)
			out = append(out, Workload{fmt.Sprintf("seed-%dslot-%.1f-s%d", c.slots, c.load, seed), c.slots, tr})
		}
		out = append(out, Workload{fmt.Sprintf("w3-10slot-0.8-s%d", seed), 10, sim.W3(n, 10, 0.8, seed)})
		seedTr := sim.SeedWorkload(n, 10, 0.8, seed)
		out = append(out, Workload{fmt.Sprintf("bursty-seed-10slot-0.8-s%d", seed), 10, sim.Bursty(seedTr, 2*time.Second)})
		w3 := sim.W3(n, 10, 0.8, seed)
		out = append(out, Workload{fmt.Sprintf("bursty-w3-10slot-0.8-s%d", seed), 10, sim.Bursty(w3, 2*time.Second)})
	}
	return out
}

// Policy is a named simulator policy.
type Policy struct {
	Name string
	Cfg  sim.Config
}

// RulePolicies are fifo, the oracle, fixed w in {1, 2, 4, 8, 16, ∞} and hrrn with caps.
func RulePolicies() []Policy {
	ps := []Policy{{"fifo", sim.Config{Policy: sim.PolicyFIFO}}, {"oracle", sim.Config{Policy: sim.PolicyOracle}}}
	for _, w := range []float64{1, 2, 4, 8, 16, math.Inf(1)} {
		ps = append(ps, Policy{"fixed-w" + ranking.FormatW(w), sim.Config{Policy: sim.PolicyActive, Rule: ranking.RuleFixed, W: w}})
	}
	for _, w := range []float64{8, 16, math.Inf(1)} {
		ps = append(ps, Policy{"hrrn-cap" + ranking.FormatW(w), sim.Config{Policy: sim.PolicyActive, Rule: ranking.RuleHRRN, W: w}})
	}
	return ps
}

// Rules simulates every policy on every workload and prints one line per pair with
// the mean and p99 completion and their ratios to fifo's and the oracle's.
func Rules(ctx context.Context, rdb redis.UniversalClient, workloads []Workload, policies []Policy, print func(string)) error {
	for _, wl := range workloads {
		res := map[string]sim.Result{}
		for _, p := range policies {
			cfg := p.Cfg
			cfg.Slots, cfg.Redis = wl.Slots, rdb
			r, err := sim.Run(ctx, wl.Trace, cfg)
			if err != nil {
				return fmt.Errorf("%s %s: %w", wl.Name, p.Name, err)
			}
			res[p.Name] = r
		}
		f, o := res["fifo"], res["oracle"]
		for _, p := range policies {
			r := res[p.Name]
			print(strings.Join([]string{"BENCH rules", "workload=" + wl.Name, "policy=" + p.Name,
				"mean_ms=" + f1(r.MeanMs), "p99_ms=" + f1(r.P99Ms),
				"mean_vs_fifo=" + f3(r.MeanMs/f.MeanMs), "mean_vs_oracle=" + f3(r.MeanMs/o.MeanMs),
				"p99_vs_fifo=" + f3(r.P99Ms/f.P99Ms), "tau=" + f2(r.Tau)}, " "))
		}
	}
	return nil
}
