// Command bench runs chronoq's benchmark workloads:
//
//	go run ./bench w1 [--redis URL] [--jobs 20000] [--repeat 3]
//	go run ./bench w2 [--redis URL] [--jobs 200]
//
// Without --redis it starts its own redis-server on a free port. Each measurement
// prints one "BENCH ..." line (the median of --repeat runs); "# run" lines show each run.
// The worker always runs in a separate OS process (this binary, re-executed).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/chronoq/chronoq/bench/harness"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
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

	if workload == "child" {
		child(*redisURL, *childWorkload, *conc, *jobs)
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
	sys := newChronoq(rdb, url)
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

// chronoq is the system under test.
type chronoq struct {
	c   *queue.Client
	url string
}

var noop = job.NewTask[int64]("noop", job.Queue("bench"))

func newChronoq(rdb *redis.Client, url string) *chronoq {
	return &chronoq{c: queue.NewClient(rdb, queue.Config{}), url: url}
}

func (s *chronoq) Name() string { return "chronoq" }

func (s *chronoq) EnqueueOne(ctx context.Context, ns int64) error {
	_, err := queue.Enqueue(ctx, s.c, noop, ns)
	return err
}

func (s *chronoq) EnqueueBulk(ctx context.Context, n int) (bool, error) {
	_, err := queue.EnqueueMany(ctx, s.c, noop, make([]int64, n))
	return true, err
}

func (s *chronoq) WorkerCmd(args ...string) *exec.Cmd {
	self, _ := os.Executable()
	return exec.Command(self, append([]string{"child", "--redis", s.url}, args...)...)
}

// child is the worker process.
func child(url, workload string, conc, n int) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		fail(err)
	}
	opt.PoolSize = max(opt.PoolSize, 4*conc)
	rdb := redis.NewClient(opt)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := queue.NewClient(rdb, queue.Config{Logger: log})
	w, err := worker.New(c, worker.Config{Queues: []worker.QueueConfig{{Name: "bench"}}, Concurrency: conc, Logger: log})
	if err != nil {
		fail(err)
	}
	rec := harness.NewRecorder(n)
	worker.Handle(w, noop, func(ctx context.Context, ns int64) error {
		rec.Start(ns)
		rec.Done()
		return nil
	})
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		fail(err)
	}
	rdb.Set(ctx, "bench:ready", strconv.Itoa(os.Getpid()), time.Minute)
	<-rec.Reached
	if err := w.Stop(ctx); err != nil {
		fail(err)
	}
	rec.Print(time.Now().UnixNano())
}
