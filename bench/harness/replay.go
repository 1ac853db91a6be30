package harness

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/sim"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// ReplayOptions are the replay bench's flags.
type ReplayOptions struct {
	TracePath   string
	Mode        string // fifo, active or oracle
	Sim         bool
	Workers     int
	Concurrency int
	Rule        ranking.Rule
	W           float64
	TimeScale   float64
}

type replayArgs struct {
	Ms float64 `msgpack:"d"` // how long to sleep, scaled
	I  int     `msgpack:"i"`
}

// Replay runs a trace through real Redis and real worker processes (or, with Sim,
// through the simulator) and returns its BENCH line. Times are reported in the
// trace's own ms (divided by the time scale).
func Replay(ctx context.Context, rdb *redis.Client, url string, o ReplayOptions, childArgs []string, progress func(string)) (Line, error) {
	f, err := os.Open(o.TracePath)
	if err != nil {
		return Line{}, err
	}
	trace, err := sim.ReadTrace(f)
	f.Close()
	if err != nil {
		return Line{}, err
	}
	if o.Workers <= 0 || o.Concurrency <= 0 || o.TimeScale <= 0 {
		return Line{}, fmt.Errorf("replay: --workers, --concurrency and --time-scale must be positive")
	}
	var completion []float64
	tau := 0.0
	if o.Sim {
		cfg := sim.Config{Slots: o.Workers * o.Concurrency, Policy: o.Mode, Rule: o.Rule, W: o.W, Redis: rdb}
		r, err := sim.Run(ctx, trace, cfg)
		if err != nil {
			return Line{}, err
		}
		completion, tau = r.Completion, r.Tau
	} else {
		completion, tau, err = replayReal(ctx, rdb, url, sim.Scale(trace, o.TimeScale), o, childArgs, progress)
		if err != nil {
			return Line{}, err
		}
		for i := range completion {
			completion[i] /= o.TimeScale
		}
	}
	sorted := append([]float64(nil), completion...)
	sort.Float64s(sorted)
	sum := 0.0
	for _, c := range sorted {
		sum += c
	}
	mode := o.Mode
	if o.Sim {
		mode += "-sim"
	}
	return Line{Head: "replay", KV: [][2]string{{"mode", mode}, {"jobs", strconv.Itoa(len(sorted))},
		{"mean_ms", f1(sum / float64(len(sorted)))}, {"p50_ms", f1(sim.Percentile(sorted, 0.5))},
		{"p99_ms", f1(sim.Percentile(sorted, 0.99))}, {"tau", f2(tau)}}}, nil
}

func replayReal(ctx context.Context, rdb *redis.Client, url string, trace []sim.Job, o ReplayOptions, childArgs []string, progress func(string)) ([]float64, float64, error) {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return nil, 0, err
	}
	c := queue.NewClient(rdb, queue.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer c.Close()
	rc := ranking.DefaultConfig()
	switch o.Mode {
	case sim.PolicyFIFO:
	case sim.PolicyActive:
		rc.Mode, rc.Rule, rc.W = ranking.ModeActive, o.Rule, o.W
	case sim.PolicyOracle:
		rc.Mode, rc.Rule, rc.W = ranking.ModeActive, ranking.RuleFixed, math.Inf(1)
	default:
		return nil, 0, fmt.Errorf("replay: --mode %q (fifo, active or oracle)", o.Mode)
	}
	if err := c.SetRanking(ctx, "replay", rc); err != nil {
		return nil, 0, err
	}
	tasks := map[string]bool{}
	for _, j := range trace {
		tasks[j.Task] = true
	}
	var names []string
	for t := range tasks {
		names = append(names, t)
	}
	self, _ := os.Executable()
	var children []*exec.Cmd
	exited := make(chan error, o.Workers)
	for p := 0; p < o.Workers; p++ {
		args := append(append([]string(nil), childArgs...), "--redis", url, "--conc", strconv.Itoa(o.Concurrency), "--tasks", strings.Join(names, ","))
		cmd := exec.Command(self, args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, 0, err
		}
		children = append(children, cmd)
		go func() { exited <- cmd.Wait() }()
	}
	finished := false
	defer func() {
		finished = true
		for _, cmd := range children {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		for range children {
			<-exited
		}
	}()
	alive := func() error {
		select {
		case err := <-exited:
			exited <- err // counted again by the deferred wait
			if !finished {
				return fmt.Errorf("replay: a worker process exited early: %v", err)
			}
		default:
		}
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for n, _ := rdb.Get(ctx, "bench:ready").Int(); n < o.Workers; n, _ = rdb.Get(ctx, "bench:ready").Int() {
		if time.Now().After(deadline) {
			return nil, 0, fmt.Errorf("replay: worker processes did not start")
		}
		if err := alive(); err != nil {
			return nil, 0, err
		}
		time.Sleep(10 * time.Millisecond)
	}
	order := make([]int, len(trace))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return trace[order[a]].Offset < trace[order[b]].Offset })
	arrived := make([]int64, len(trace))
	start := time.Now()
	for k, i := range order {
		j := trace[i]
		if d := time.Until(start.Add(j.Offset)); d > 0 {
			time.Sleep(d)
		}
		opts := []job.Option{job.Queue("replay"), job.MaxRetries(0)}
		for name, v := range j.Cost {
			opts = append(opts, job.Cost(name, v))
		}
		if o.Mode == sim.PolicyOracle {
			opts = append(opts, job.Estimate(j.Duration))
		}
		arrived[i] = time.Now().UnixNano()
		if _, err := c.EnqueueByName(ctx, j.Task, replayArgs{Ms: float64(j.Duration) / float64(time.Millisecond), I: i}, opts...); err != nil {
			return nil, 0, err
		}
		if (k+1)%500 == 0 {
			progress(fmt.Sprintf("# replay: %d of %d enqueued", k+1, len(trace)))
		}
	}
	for {
		n, err := rdb.LLen(ctx, "bench:replay").Result()
		if err != nil {
			return nil, 0, err
		}
		if int(n) >= len(trace) {
			break
		}
		if err := alive(); err != nil {
			return nil, 0, err
		}
		time.Sleep(50 * time.Millisecond) // a bench harness watching for the end
	}
	done, err := rdb.LRange(ctx, "bench:replay", 0, -1).Result()
	if err != nil {
		return nil, 0, err
	}
	completion := make([]float64, len(trace))
	for _, d := range done {
		is, ns, _ := strings.Cut(d, "|")
		i, _ := strconv.Atoi(is)
		fin, _ := strconv.ParseInt(ns, 10, 64)
		completion[i] = float64(fin-arrived[i]) / 1e6
	}
	rep, err := c.RankingQuality(ctx, "replay", 1000)
	if err != nil {
		return nil, 0, err
	}
	return completion, rep.Overall.KendallTau, nil
}

// ReplayChild is a replay worker process: handlers for the trace's tasks sleep each
// job's duration and record when they finished.
func ReplayChild(url string, conc int, tasks []string) error {
	rdb, w, err := childWorker(url, worker.Config{Queues: []worker.QueueConfig{{Name: "replay"}}, Concurrency: conc,
		ShutdownTimeout: time.Second})
	if err != nil {
		return err
	}
	for _, t := range tasks {
		w.HandleFunc(t, func(ctx context.Context, j *job.Job) (any, error) {
			var a replayArgs
			if err := j.Decode(&a); err != nil {
				return nil, err
			}
			time.Sleep(time.Duration(a.Ms * float64(time.Millisecond)))
			rdb.RPush(ctx, "bench:replay", strconv.Itoa(a.I)+"|"+strconv.FormatInt(time.Now().UnixNano(), 10))
			return nil, nil
		})
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := w.Start(context.Background()); err != nil {
		return err
	}
	rdb.Incr(ctx, "bench:ready")
	<-ctx.Done()
	return w.Stop(context.Background())
}

// Generate writes a generated trace as CSV: seed, w3, bursty-seed, bursty-w3 or drift
// (the seed workload with type2 and type4 swapping run times halfway).
func Generate(w io.Writer, name string, n, slots int, load float64, seed uint64) error {
	var jobs []sim.Job
	switch name {
	case "seed":
		jobs = sim.SeedWorkload(n, slots, load, seed)
	case "w3":
		jobs = sim.W3(n, slots, load, seed)
	case "bursty-seed":
		jobs = sim.Bursty(sim.SeedWorkload(n, slots, load, seed), 2*time.Second)
	case "bursty-w3":
		jobs = sim.Bursty(sim.W3(n, slots, load, seed), 2*time.Second)
	case "drift":
		jobs = sim.Drift(sim.SeedWorkload(n, slots, load, seed), "type2", "type4")
	default:
		return fmt.Errorf("gen: unknown --workload %q (seed, w3, bursty-seed, bursty-w3, drift)", name)
	}
	return sim.WriteTrace(w, jobs)
}
