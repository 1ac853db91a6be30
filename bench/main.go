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
	"flag"
	"fmt"
	"os"

	"github.com/chronoq/chronoq/bench/harness"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench w1|w2 [--redis URL] [--jobs N] [--repeat N]")
		os.Exit(2)
	}
	workload := os.Args[1]
	fs := flag.NewFlagSet(workload, flag.ExitOnError)
	redisURL := fs.String("redis", "", "Redis URL (default: start a redis-server on a free port)")
	jobs := fs.Int("jobs", 0, "jobs (w1: 20000, w2: 200)")
	repeat := fs.Int("repeat", 3, "runs per measurement; the median is printed")
	conc := fs.Int("conc", 10, "worker concurrency (child)")
	childWorkload := fs.String("workload", "", "child: the workload to serve")
	_ = fs.Parse(os.Args[2:])

	if workload == "child-raw" {
		if err := harness.RawRedisChild(*redisURL, *jobs); err != nil {
			fail(err)
		}
		return
	}
	if workload == "child" {
		_ = childWorkload // w1 and w2 need the same worker; the flag is for peers
		if err := harness.ChronoqChild(*redisURL, *conc, *jobs); err != nil {
			fail(err)
		}
		return
	}
	ctx := context.Background()
	url, stop, err := redisFor(*redisURL)
	if err != nil {
		fail(err)
	}
	defer stop()
	opt, err := redis.ParseURL(url)
	if err != nil {
		fail(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	sys := harness.NewChronoq(rdb, url, "child")
	switch workload {
	case "w1":
		n := orDefault(*jobs, 20000)
		lines, err := harness.W1(ctx, sys, rdb, harness.Options{Jobs: n, Repeat: *repeat}, "", func(s string) { fmt.Println(s) })
		if err != nil {
			fail(err)
		}
		for _, l := range lines {
			fmt.Println(l)
		}
	case "w2":
		l, err := harness.W2(ctx, sys, rdb, orDefault(*jobs, 200), "")
		if err != nil {
			fail(err)
		}
		fmt.Println(l)
		// the floor: a bare RPUSH/BLPOP between two processes on this machine
		floor, err := harness.W2(ctx, harness.NewRawRedis(rdb, url, "child-raw"), rdb, orDefault(*jobs, 200), "raw-redis")
		if err != nil {
			fail(err)
		}
		fmt.Println(floor)
	default:
		fail(fmt.Errorf("unknown workload %q (w1, w2)", workload))
	}
}

func orDefault(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// redisFor returns url, or starts a redis-server and returns its URL.
func redisFor(url string) (string, func(), error) {
	if url != "" {
		return url, func() {}, nil
	}
	s, err := redistest.Start()
	if err != nil {
		return "", nil, err
	}
	return "redis://" + s.Addr + "/0", s.Stop, nil
}
