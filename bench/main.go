// Command bench runs chronoq's benchmark workloads:
//
//	go run ./bench w1 [--redis URL] [--jobs 20000] [--repeat 3]
//	go run ./bench w2 [--redis URL] [--jobs 200]   (also prints the raw-redis floor)
//
// Without --redis it starts its own redis-server on a free port. Each measurement
// prints one "BENCH ..." line (the median of --repeat runs); "# run" lines show each run.
// The worker always runs in a separate OS process (this binary, re-executed).
package main

import (
	"context"
	"fmt"

	"github.com/chronoq/chronoq/bench/harness"
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
	}
	ctx := context.Background()
	rdb, url, stop, err := f.Connect()
	harness.Fail(err)
	defer stop()
	defer rdb.Close()
	sys := harness.NewChronoq(rdb, url, "child")
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
	case "rules":
		// the simulator on every workload and rule, through the real scripts on this Redis
		harness.Fail(harness.Rules(ctx, rdb, harness.RuleWorkloads(f.JobsOr(2000), []uint64{1, 2, 3}), harness.RulePolicies(),
			func(s string) { fmt.Println(s) }))
	default:
		harness.Fail(fmt.Errorf("unknown workload %q (w1, w2, rules)", f.Workload))
	}
}
