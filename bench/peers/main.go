// Command peers runs chronoq's W1 and W2 workloads on asynq (v0.26) and on chronoq,
// back to back against the same Redis, with the same harness:
//
//	cd bench/peers && go run . w1|w2 [--redis URL] [--repeat 3]
//
// It prints each system's BENCH lines (asynq's with system=asynq) and a final
// "BENCH ratio ..." line: chronoq's advantage, >1 meaning chronoq is better
// (w1_drain, w1_drain_conc50, w1_enqueue_best, w1_enqueue_single and
// w1_enqueue_parallel16: chronoq/asynq rates; w2_p50: asynq/chronoq latency).
//
// With --system river it runs the same workloads on River (v0.51, pgx v5 driver)
// against PostgreSQL instead, in River's default config and in one tuned for
// throughput, each line with system=river and config=default|tuned:
//
//	cd bench/peers && go run . w1|w2 --system river [--pg URL] [--river-config default,tuned] [--repeat 3]
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/chronoq/chronoq/bench/harness"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

func main() {
	pf, err := splitPeerFlags()
	check(err)
	f := harness.ParseFlags("usage: go run . w1|w2 [--redis URL] [--repeat N]\n" +
		"       go run . w1|w2 --system river [--pg URL] [--river-config default,tuned] [--repeat N]")
	switch f.Workload {
	case "child-chronoq":
		check(harness.ChronoqChild(f.Redis, f.Conc, f.Jobs))
		return
	case "child-asynq":
		check(asynqChild(f.Redis, f.Child, f.Conc, f.Jobs))
		return
	case "child-river":
		check(riverChild(pf.PG, pf.RiverConfig, f.Conc, f.Jobs))
		return
	}
	if pf.System == "river" {
		check(runRiver(f, pf))
		return
	}
	rdb, url, stop, err := f.Connect()
	check(err)
	defer stop()
	defer rdb.Close()
	ctx := context.Background()
	as := newAsynq(url)
	defer as.client.Close()
	cq := harness.NewChronoq(rdb, url, "child-chronoq")
	print := func(s string) { fmt.Println(s) }

	switch f.Workload {
	case "w1":
		o := harness.Options{Jobs: f.JobsOr(20000), Repeat: f.Repeat}
		mine, err := harness.W1(ctx, cq, rdb, o, "chronoq", print)
		check(err)
		theirs, err := harness.W1(ctx, as, rdb, o, "asynq", print)
		check(err)
		for _, l := range append(mine, theirs...) {
			fmt.Println(l)
		}
		drain := func(ls []harness.Line, conc string) float64 {
			for _, l := range ls {
				if l.KV[1][1] == "drain" && l.KV[2][1] == conc {
					return l.Get("jobs_per_s")
				}
			}
			return 0
		}
		best := func(ls []harness.Line) float64 {
			b := 0.0
			for _, l := range ls {
				if l.KV[1][1] == "enqueue" {
					b = max(b, l.Get("jobs_per_s"))
				}
			}
			return b
		}
		enqueue := func(ls []harness.Line, mode string) float64 {
			for _, l := range ls {
				if l.KV[1][1] == "enqueue" && l.KV[2][1] == mode {
					return l.Get("jobs_per_s")
				}
			}
			return 0
		}
		fmt.Printf("BENCH ratio w1_drain=%s w1_enqueue_best=%s w1_drain_conc50=%s w1_enqueue_single=%s w1_enqueue_parallel16=%s\n",
			harness.Fmt(drain(mine, "10")/drain(theirs, "10"), 2),
			harness.Fmt(best(mine)/best(theirs), 2),
			harness.Fmt(drain(mine, "50")/drain(theirs, "50"), 2),
			harness.Fmt(enqueue(mine, "single")/enqueue(theirs, "single"), 2),
			harness.Fmt(enqueue(mine, "parallel16")/enqueue(theirs, "parallel16"), 2))
	case "w2":
		n := f.JobsOr(200)
		mine, err := harness.W2(ctx, cq, rdb, n, "chronoq")
		check(err)
		theirs, err := harness.W2(ctx, as, rdb, n, "asynq")
		check(err)
		fmt.Println(mine)
		fmt.Println(theirs)
		fmt.Printf("BENCH ratio w2_p50=%s\n", harness.Fmt(theirs.Get("p50_ms")/mine.Get("p50_ms"), 1))
	default:
		check(fmt.Errorf("unknown workload %q", f.Workload))
	}
}

func check(err error) { harness.Fail(err) }

type asynqSys struct {
	client *asynq.Client
	url    string
}

func newAsynq(url string) *asynqSys {
	opt, err := asynq.ParseRedisURI(url)
	check(err)
	return &asynqSys{client: asynq.NewClient(opt), url: url}
}

func (s *asynqSys) Name() string { return "asynq" }

func (s *asynqSys) EnqueueOne(ctx context.Context, ns int64) error {
	var payload []byte
	if ns != 0 {
		payload = []byte(strconv.FormatInt(ns, 10))
	}
	_, err := s.client.EnqueueContext(ctx, asynq.NewTask("noop", payload), asynq.Queue("bench"))
	return err
}

// EnqueueBulk: asynq has no bulk enqueue.
func (s *asynqSys) EnqueueBulk(ctx context.Context, n int) (bool, error) { return false, nil }

func (s *asynqSys) WorkerCmd(args ...string) *harness.Cmd {
	self, _ := os.Executable()
	return exec.Command(self, append([]string{"child-asynq", "--redis", s.url}, args...)...)
}

// asynqChild runs an asynq server with its default settings but for concurrency.
func asynqChild(url, workload string, conc, n int) error {
	opt, err := asynq.ParseRedisURI(url)
	if err != nil {
		return err
	}
	rec := harness.NewRecorder(n)
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency: conc,
		Queues:      map[string]int{"bench": 1},
		LogLevel:    asynq.FatalLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc("noop", func(ctx context.Context, t *asynq.Task) error {
		ns, _ := strconv.ParseInt(string(t.Payload()), 10, 64)
		rec.Start(ns)
		rec.Done()
		return nil
	})
	if err := srv.Start(mux); err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: opt.(asynq.RedisClientOpt).Addr, DB: opt.(asynq.RedisClientOpt).DB})
	rdb.Set(context.Background(), "bench:ready", "1", time.Minute)
	<-rec.Reached
	srv.Shutdown()
	rec.Print(time.Now().UnixNano())
	return nil
}

// runRiver runs W1 or W2 on River, once per config of --river-config.
func runRiver(f harness.Flags, pf peerFlags) error {
	ctx := context.Background()
	pool, err := newPool(ctx, pf.PG)
	if err != nil {
		return err
	}
	defer pool.Close()
	msg, err := migrateRiver(ctx, pool)
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	fmt.Println(msg)
	print := func(s string) { fmt.Println(s) }
	var out []harness.Line
	for _, config := range strings.Split(pf.RiverConfig, ",") {
		s, err := newRiver(ctx, pool, pf.PG, config)
		if err != nil {
			return err
		}
		switch f.Workload {
		case "w1":
			ls, err := riverW1(ctx, s, f.JobsOr(20000), f.Repeat, print)
			if err != nil {
				return err
			}
			out = append(out, ls...)
		case "w2":
			l, err := riverW2(ctx, s, f.JobsOr(200))
			if err != nil {
				return err
			}
			out = append(out, l)
		default:
			return fmt.Errorf("unknown workload %q", f.Workload)
		}
		if err := s.clear(ctx); err != nil {
			return err
		}
	}
	for _, l := range out {
		fmt.Println(l)
	}
	return nil
}
