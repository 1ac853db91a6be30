package harness

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/ranking"
	"github.com/redis/go-redis/v9"
)

// Flags are the command line of a bench program: `PROGRAM WORKLOAD [flags]`.
type Flags struct {
	Workload string // the first argument: w1, w2, or a child-* role
	Redis    string // URL; empty: start a redis-server
	Jobs     int    // 0: the workload's default
	Repeat   int
	Conc     int    // a worker process's concurrency
	Child    string // a worker process's workload
	Mode     string // ranking mode of the bench queue (w1, w4); replay: fifo, active, oracle
	// replay and gen
	Trace       string
	Sim         bool
	Workers     int
	Concurrency int
	Rule        string
	W           float64
	TimeScale   float64
	Tasks       string
	Gen         string
	Slots       int
	Load        float64
	Seed        uint64
	// fair
	Duration time.Duration // how long the light keys enqueue
	HeavyMs  string        // the heavy key's run times, comma-separated; empty: 2,20
	FairKeys int           // w1: jobs spread over this many fair keys, the queue in share mode (0: fairness off)
	LimitCap int           // w1: a fleet-wide cap on the drained task's running jobs (0: no limit)
}

// ParseFlags reads os.Args, exiting with usage on a missing workload.
func ParseFlags(usage string) Flags {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	f := Flags{Workload: os.Args[1]}
	fs := flag.NewFlagSet(f.Workload, flag.ExitOnError)
	fs.StringVar(&f.Redis, "redis", "", "Redis URL (default: start a redis-server on a free port)")
	fs.IntVar(&f.Jobs, "jobs", 0, "jobs (w1: 20000, w2: 200)")
	fs.IntVar(&f.Repeat, "repeat", 3, "runs per measurement; the median is printed")
	fs.IntVar(&f.Conc, "conc", 10, "worker concurrency (worker processes)")
	fs.StringVar(&f.Child, "child-workload", "", "the workload a worker process serves")
	fs.StringVar(&f.Mode, "mode", "", "w1, w4: ranking mode of the bench queue (fifo, shadow, active); replay: fifo, active or oracle; fair: off, lru or share (default: every built one)")
	fs.StringVar(&f.Trace, "trace", "", "replay: the CSV trace (offset_ms,task,duration_ms[,cost_<name>...])")
	fs.BoolVar(&f.Sim, "sim", false, "replay: run the simulator on the trace instead")
	fs.IntVar(&f.Workers, "workers", 2, "replay: worker processes")
	fs.IntVar(&f.Concurrency, "concurrency", 5, "replay: concurrency of each worker process")
	fs.StringVar(&f.Rule, "rule", string(ranking.DefaultRule), "replay: rule of the active mode (fixed or hrrn)")
	fs.Float64Var(&f.W, "w", ranking.DefaultW, "replay: w of the active mode (inf: no aging)")
	fs.Float64Var(&f.TimeScale, "time-scale", 1, "replay: multiply every offset and duration by this")
	fs.StringVar(&f.Tasks, "tasks", "", "replay worker process: the task names to serve")
	fs.StringVar(&f.Gen, "workload", "", "")
	fs.IntVar(&f.Slots, "slots", 10, "gen: slots the load is computed for")
	fs.Float64Var(&f.Load, "load", 0.8, "gen: offered load")
	fs.Uint64Var(&f.Seed, "seed", 1, "gen: random seed")
	fs.DurationVar(&f.Duration, "duration", 30*time.Second, "fair: how long the light keys enqueue")
	fs.IntVar(&f.FairKeys, "fair-keys", 0, "w1: spread the jobs over N fair keys with the queue in share mode (0: off)")
	fs.IntVar(&f.LimitCap, "limit-cap", 0, "w1: cap the drained task at N running jobs fleet-wide, a limit that is counted but never binds at N above the concurrency (0: no limit)")
	fs.StringVar(&f.HeavyMs, "heavy-ms", "", "fair: the heavy key's job run time in ms, 2, 20 or 2,20 (default: both)")
	_ = fs.Parse(os.Args[2:])
	return f
}

// JobsOr returns the --jobs value, or def when it was not given.
func (f Flags) JobsOr(def int) int {
	if f.Jobs > 0 {
		return f.Jobs
	}
	return def
}

// Connect returns a client on --redis, or on a redis-server it starts (stop stops it).
func (f Flags) Connect() (rdb *redis.Client, url string, stop func(), err error) {
	url, stop = f.Redis, func() {}
	if url == "" {
		s, err := redistest.Start()
		if err != nil {
			return nil, "", nil, err
		}
		url, stop = "redis://"+s.Addr+"/0", s.Stop
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		stop()
		return nil, "", nil, err
	}
	return redis.NewClient(opt), url, stop, nil
}

// Fail prints err and exits 1.
func Fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
