// Command bench runs chronoq's benchmark workloads:
//
//	go run ./bench w1 [--redis URL] [--jobs 20000] [--repeat 3]
//	go run ./bench w1 --mode active               (the drain in a ranking mode)
//	go run ./bench w1 --fair-keys 1000            (the drain in share mode, jobs over 1,000 fair keys)
//	go run ./bench w2 [--redis URL] [--jobs 200]   (also prints the raw-redis floor)
//	go run ./bench w4 [--repeat 3]                 (dequeue rate, backlog 1k vs 1M; fetch rate after 20k drained lanes)
//	go run ./bench w5 [--jobs 1000000]             (far-future store: rate, bytes, due-lag, drain)
//	go run ./bench beat [--jobs 10000]             (one beat, 10k entries due on the same minute)
//	go run ./bench dashboard [--jobs 1000000]      (every page with 1M pending jobs)
//	go run ./bench cluster_fault [--repeat 3]       (one master of a 3-master cluster paused, then killed: the healthy queue's start latency, the faulty queue's recovery)
//	go run ./bench fair [--mode off|lru|share] [--heavy-ms 2|20] [--duration 30s] [--repeat 3]
//	                                               (noisy neighbour: light keys' wait, heavy rate, share_error; then fetch rate at 100,000 keys vs 10)
//	go run ./bench limits [--jobs 20000] [--repeat 1]  (A at 200/s beside unlimited B; C capped at 3 over 4 processes)
//	go run ./bench rules                           (the simulator: every rule, every workload)
//	go run ./bench gen --workload seed|w3|bursty-seed|bursty-w3|drift [--jobs --slots --load --seed] > trace.csv
//	go run ./bench replay --trace FILE --mode fifo|active|oracle [--sim] [--workers P --concurrency C --rule R --w W --time-scale F]
//
// Without --redis it starts its own redis-server on a free port. Each measurement
// prints one "BENCH ..." line (the median of --repeat runs); "# run" lines show each run.
// The worker always runs in a separate OS process (this binary, re-executed).
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/chronoq/chronoq/bench/harness"
	"github.com/chronoq/chronoq/ranking"
)

func main() {
	f := harness.ParseFlags("usage: go run ./bench w1|w2 [--redis URL] [--jobs N] [--repeat N]")
	switch f.Workload {
	case "child-raw":
		harness.Fail(harness.RawRedisChild(f.Redis, f.Jobs))
		return
	case "child":
		harness.Fail(harness.ChronoqChild(f.Redis, f.Conc, f.Jobs))
		return
	case "child-fair":
		harness.Fail(harness.FairChild(f.Redis, f.Conc))
		return
	case "child-limits":
		harness.Fail(harness.LimitsChild(f.Redis, f.Conc))
		return
	case "fair": // checks --mode before it starts a redis-server
		runFair(f)
		return
	case "child-replay":
		harness.Fail(harness.ReplayChild(f.Redis, f.Conc, strings.Split(f.Tasks, ",")))
		return
	case "gen":
		harness.Fail(harness.Generate(os.Stdout, f.Gen, f.JobsOr(2000), f.Slots, f.Load, f.Seed))
		return
	case "cluster_fault": // forms its own cluster
		line, err := harness.ClusterFault(context.Background(), f.Repeat, func(s string) { fmt.Println(s) })
		harness.Fail(err)
		fmt.Println(line)
		return
	}
	ctx := context.Background()
	rdb, url, stop, err := f.Connect()
	harness.Fail(err)
	defer stop()
	defer rdb.Close()
	sys := harness.NewChronoq(rdb, url, "child")
	sys.FairKeys = f.FairKeys
	sys.LimitCap = f.LimitCap
	if f.Mode != "" && (f.Workload == "w1" || f.Workload == "w4") {
		cfg := ranking.DefaultConfig()
		m, err := ranking.ParseMode(f.Mode)
		harness.Fail(err)
		cfg.Mode = m
		sys.Ranking = cfg
	}
	switch f.Workload {
	case "w1":
		lines, err := harness.W1(ctx, sys, rdb, harness.Options{Jobs: f.JobsOr(20000), Repeat: f.Repeat}, "", func(s string) { fmt.Println(s) })
		harness.Fail(err)
		for _, l := range lines {
			fmt.Println(l)
		}
	case "w2":
		l, err := harness.W2(ctx, sys, rdb, f.JobsOr(200), "")
		harness.Fail(err)
		fmt.Println(l)
		// the floor: a bare RPUSH/BLPOP between two processes on this machine
		floor, err := harness.W2(ctx, harness.NewRawRedis(rdb, url, "child-raw"), rdb, f.JobsOr(200), "raw-redis")
		harness.Fail(err)
		fmt.Println(floor)
	case "w4":
		// dequeue cost must not grow with the backlog: active mode unless --mode says
		if sys.Ranking.Mode == "" {
			sys.Ranking = ranking.DefaultConfig()
			sys.Ranking.Mode = ranking.ModeActive
		}
		var rates []float64
		for _, backlog := range []int{1000, 1000000} {
			var runs []float64
			var line harness.Line
			for r := 0; r < f.Repeat; r++ {
				l, err := harness.W4(ctx, sys, rdb, backlog, 1000, func(s string) { fmt.Println(s) })
				harness.Fail(err)
				fmt.Printf("# run %d: %s\n", r+1, l)
				runs = append(runs, l.Get("jobs_per_s"))
				line = l
			}
			m := harness.Median(runs)
			line.KV[1][1] = harness.Fmt(m, 0)
			fmt.Println(line)
			rates = append(rates, m)
		}
		fmt.Printf("# w4 ratio (backlog 1k / 1M dequeue rate): %s\n", harness.Fmt(rates[0]/rates[1], 3))
		// nor with the lanes that held work once: 20,000 drained lanes against 10
		var ratios []float64
		var line harness.Line
		for r := 0; r < f.Repeat; r++ {
			l, err := harness.DeadLanes(ctx, rdb, 20000, 5000, func(s string) { fmt.Println(s) })
			harness.Fail(err)
			fmt.Printf("# run %d: %s\n", r+1, l)
			ratios = append(ratios, l.Get("fetch_ratio"))
			line = l
		}
		line.KV[1][1] = harness.Fmt(harness.Median(ratios), 3)
		fmt.Println(line)
	case "replay":
		w := f.W
		l, err := harness.Replay(ctx, rdb, url, harness.ReplayOptions{TracePath: f.Trace, Mode: f.Mode, Sim: f.Sim,
			Workers: f.Workers, Concurrency: f.Concurrency, Rule: ranking.Rule(f.Rule), W: w, TimeScale: f.TimeScale},
			[]string{"child-replay"}, func(s string) { fmt.Println(s) })
		harness.Fail(err)
		fmt.Println(l)
	case "w5":
		l, err := harness.W5(ctx, sys, rdb, f.JobsOr(1000000), func(s string) { fmt.Println(s) })
		harness.Fail(err)
		fmt.Println(l)
	case "beat":
		l, err := harness.Beat(ctx, rdb, f.JobsOr(10000), func(s string) { fmt.Println(s) })
		harness.Fail(err)
		fmt.Println(l)
	case "dashboard":
		l, err := harness.Dashboard(ctx, rdb, f.JobsOr(1000000), func(s string) { fmt.Println(s) })
		harness.Fail(err)
		fmt.Println(l)
	case "drift":
		for _, seed := range []uint64{1, 2, 3} {
			l, err := harness.Drift(ctx, rdb, f.JobsOr(2000), 10, 0.8, seed)
			harness.Fail(err)
			fmt.Println(l)
		}
	case "limits":
		lines, err := harness.Limits(ctx, rdb, url, f.JobsOr(20000), f.Repeat, []string{"child-limits"}, func(s string) { fmt.Println(s) })
		for _, l := range lines {
			fmt.Println(l)
		}
		harness.Fail(err)
	case "rules":
		// the simulator on every workload and rule, through the real scripts on this Redis
		harness.Fail(harness.Rules(ctx, rdb, harness.RuleWorkloads(f.JobsOr(2000), []uint64{1, 2, 3}), harness.RulePolicies(),
			func(s string) { fmt.Println(s) }))
	default:
		harness.Fail(fmt.Errorf("unknown workload %q (w1, w2, rules)", f.Workload))
	}
}
