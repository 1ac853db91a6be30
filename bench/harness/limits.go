package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// The limits bench (issue 14). Rate: limitJobs jobs of task A limited to limitRate/s
// and limitJobs of task B unlimited, rateWorkers worker processes at rateConc; against
// a run of B alone. Cap: capJobs jobs of task C capped at capN running, across
// capWorkers processes.
const (
	limitQueue   = "limits"
	limitRate    = 200
	rateWorkers  = 2
	rateConc     = 20
	limitJobMs   = 2 // A's and B's run time
	capN         = 3
	capWorkers   = 4
	capConc      = 5
	capJobs      = 300
	capJobMs     = 50
	limitDone    = "bench:limits:done"
	limitEnqueue = 1000 // jobs per EnqueueMany
)

type limitArgs struct {
	Ms float64 `json:"ms"`
}

var (
	limitTaskA = job.NewTask[limitArgs]("limit-a", job.Queue(limitQueue))
	limitTaskB = job.NewTask[limitArgs]("limit-b", job.Queue(limitQueue))
	limitTaskC = job.NewTask[limitArgs]("limit-c", job.Queue(limitQueue))
)

// limitRecord is one run of a job in a worker process: its task, its start and end
// (ns, the process' wall clock: every process runs on this machine) and its attempt.
type limitRecord struct {
	task       string
	start, end int64
	attempt    int
}

// Limits runs the limits bench: repeat pairs of rate runs (B alone, then A and B), the
// cap run, and returns the two BENCH lines.
func Limits(ctx context.Context, rdb *redis.Client, url string, jobs, repeat int, childArgs []string, progress func(string)) ([]Line, error) {
	var rate []Line
	for i := 0; i < max(repeat, 1); i++ {
		alone, err := rateRun(ctx, rdb, url, jobs, false, childArgs)
		if err != nil {
			return nil, err
		}
		with, err := rateRun(ctx, rdb, url, jobs, true, childArgs)
		if err != nil {
			return nil, err
		}
		l := Line{Head: "limits", KV: [][2]string{{"rate", strconv.Itoa(limitRate)}, {"rate_max_window", strconv.Itoa(with.maxWindow)},
			{"b_jobs_per_s", f0(with.bRate)}, {"b_slowdown", f3(alone.bRate / with.bRate)}, {"attempts_spent", strconv.Itoa(with.spent + alone.spent)}}}
		progress(fmt.Sprintf("# run %d: %s (B alone %s jobs/s; A ran at %s/s)", i+1, l, f0(alone.bRate), f1(with.aRate)))
		rate = append(rate, l)
	}
	out := []Line{medianLine(rate, "b_slowdown")}
	c, err := capRun(ctx, rdb, url, childArgs)
	if err != nil {
		return out, err
	}
	out = append(out, c)
	return out, nil
}

type rateResult struct {
	maxWindow    int
	bRate, aRate float64
	spent        int
}

func rateRun(ctx context.Context, rdb *redis.Client, url string, jobs int, withA bool, childArgs []string) (rateResult, error) {
	c, err := limitsSetup(ctx, rdb)
	if err != nil {
		return rateResult{}, err
	}
	defer c.Close()
	if err := c.SetLimit(ctx, limitQueue, job.Limit{Scope: job.ScopeTask, Task: limitTaskA.Name(), Rate: mustRate(fmt.Sprintf("%d/s", limitRate))}); err != nil {
		return rateResult{}, err
	}
	// A and B interleaved, A first: A's lane stays at the head of the order, so every
	// fetch meets A held back by its rate and must go on to B in the same call
	total := jobs
	if withA {
		total += jobs
	}
	for done := 0; done < jobs; done += limitEnqueue {
		n := min(limitEnqueue, jobs-done)
		if withA {
			if err := enqueueLimited(ctx, c, limitTaskA, n, limitJobMs); err != nil {
				return rateResult{}, err
			}
		}
		if err := enqueueLimited(ctx, c, limitTaskB, n, limitJobMs); err != nil {
			return rateResult{}, err
		}
	}
	recs, err := runLimitWorkers(ctx, rdb, url, rateWorkers, rateConc, total, childArgs)
	if err != nil {
		return rateResult{}, err
	}
	var res rateResult
	var as, bs []int64
	var bEnd int64
	for _, r := range recs {
		switch r.task {
		case limitTaskA.Name():
			as = append(as, r.start)
		case limitTaskB.Name():
			bs = append(bs, r.start)
			bEnd = max(bEnd, r.end)
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i] < bs[j] })
	if len(bs) > 0 && bEnd > bs[0] {
		res.bRate = float64(len(bs)) / (float64(bEnd-bs[0]) / 1e9)
	}
	if len(as) > 1 {
		sort.Slice(as, func(i, j int) bool { return as[i] < as[j] })
		res.maxWindow = MaxWindow(as, int64(time.Second))
		res.aRate = float64(len(as)-1) / (float64(as[len(as)-1]-as[0]) / 1e9)
	}
	res.spent, err = attemptsSpent(ctx, rdb, recs, total)
	return res, err
}

// MaxWindow is the largest number of sorted times ts in any window [t, t+w) that
// begins a full w after the first and ends by the last (the steady state: the first
// window holds the bucket's burst, the last a partial one).
func MaxWindow(ts []int64, w int64) int {
	best, j := 0, 0
	for i := range ts {
		if ts[i] < ts[0]+w || ts[i]+w > ts[len(ts)-1] {
			continue
		}
		for j < len(ts) && ts[j] < ts[i]+w {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// attemptsSpent counts attempts beyond each job's first: runs past the number of jobs,
// runs that were not a first attempt (Attempt counts from 1), and the queue's retried and failed counters.
func attemptsSpent(ctx context.Context, rdb *redis.Client, recs []limitRecord, jobs int) (int, error) {
	spent := len(recs) - jobs
	for _, r := range recs {
		if r.attempt > 1 {
			spent++
		}
	}
	st, err := rdb.HMGet(ctx, "chronoq:{"+limitQueue+"}:stat", "retried", "failed").Result()
	if err != nil {
		return 0, err
	}
	for _, v := range st {
		if s, ok := v.(string); ok {
			n, _ := strconv.Atoi(s)
			spent += n
		}
	}
	return spent, nil
}

func capRun(ctx context.Context, rdb *redis.Client, url string, childArgs []string) (Line, error) {
	c, err := limitsSetup(ctx, rdb)
	if err != nil {
		return Line{}, err
	}
	defer c.Close()
	if err := c.SetLimit(ctx, limitQueue, job.Limit{Scope: job.ScopeTask, Task: limitTaskC.Name(), MaxRunning: capN}); err != nil {
		return Line{}, err
	}
	if err := enqueueLimited(ctx, c, limitTaskC, capJobs, capJobMs); err != nil {
		return Line{}, err
	}
	recs, err := runLimitWorkers(ctx, rdb, url, capWorkers, capConc, capJobs, childArgs)
	if err != nil {
		return Line{}, err
	}
	seen, util := capUse(recs)
	return Line{Head: "limits", KV: [][2]string{{"cap", strconv.Itoa(capN)}, {"max_running_seen", strconv.Itoa(seen)}, {"utilisation", f3(util)}}}, nil
}

// capUse is the most runs that overlapped, and the runs' time over capN slots for the
// span from the first start to the last end (C is backlogged throughout).
func capUse(recs []limitRecord) (int, float64) {
	type ev struct {
		at int64
		d  int
	}
	var evs []ev
	var busy, first, last int64
	for i, r := range recs {
		evs = append(evs, ev{r.start, 1}, ev{r.end, -1})
		busy += r.end - r.start
		if i == 0 || r.start < first {
			first = r.start
		}
		last = max(last, r.end)
	}
	sort.Slice(evs, func(i, j int) bool { // an end before a start at the same ns
		if evs[i].at != evs[j].at {
			return evs[i].at < evs[j].at
		}
		return evs[i].d < evs[j].d
	})
	cur, most := 0, 0
	for _, e := range evs {
		cur += e.d
		most = max(most, cur)
	}
	if last <= first {
		return most, 0
	}
	return most, float64(busy) / (float64(capN) * float64(last-first))
}

func mustRate(spec string) job.Rate {
	r, err := job.ParseRate(spec)
	if err != nil {
		panic(err)
	}
	return r
}

func limitsSetup(ctx context.Context, rdb *redis.Client) (*queue.Client, error) {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return nil, err
	}
	return queue.NewClient(rdb, queue.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}), nil
}

func enqueueLimited(ctx context.Context, c *queue.Client, t *job.Task[limitArgs], n int, ms float64) error {
	for done := 0; done < n; done += limitEnqueue {
		args := make([]limitArgs, min(limitEnqueue, n-done))
		for i := range args {
			args[i] = limitArgs{Ms: ms}
		}
		if _, err := queue.EnqueueMany(ctx, c, t, args); err != nil {
			return err
		}
	}
	return nil
}

// runLimitWorkers starts procs worker processes at conc, waits for total jobs to end
// and returns every process' records.
func runLimitWorkers(ctx context.Context, rdb *redis.Client, url string, procs, conc, total int, childArgs []string) ([]limitRecord, error) {
	kids, err := startChildren(childArgs, url, procs, conc)
	if err != nil {
		return nil, err
	}
	defer kids.stop()
	deadline := time.Now().Add(15 * time.Minute)
	for {
		n, err := rdb.Get(ctx, limitDone).Int()
		if err != nil && err != redis.Nil {
			return nil, err
		}
		if n >= total {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d jobs done after 15 minutes", n, total)
		}
		if err := kids.alive(); err != nil {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond) // a bench harness watching for the end
	}
	kids.stop()
	var recs []limitRecord
	for _, b := range kids.outs {
		sc := bufio.NewScanner(b)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 5 || f[0] != "R" {
				continue
			}
			r := limitRecord{task: f[1]}
			var err1, err2, err3 error
			r.start, err1 = strconv.ParseInt(f[2], 10, 64)
			r.end, err2 = strconv.ParseInt(f[3], 10, 64)
			r.attempt, err3 = strconv.Atoi(f[4])
			if err1 != nil || err2 != nil || err3 != nil {
				return nil, fmt.Errorf("worker process record %q", sc.Text())
			}
			recs = append(recs, r)
		}
	}
	if len(recs) < total {
		return nil, fmt.Errorf("worker processes recorded %d jobs of %d", len(recs), total)
	}
	return recs, nil
}

// LimitsChild is a limits bench worker process: its handlers sleep each job's run time
// and record (task, start, end, attempt); it counts finished jobs in Redis a few times a
// second and, on SIGTERM, stops and prints its records.
func LimitsChild(url string, conc int) error {
	rdb, w, err := childWorker(url, worker.Config{Queues: []worker.QueueConfig{{Name: limitQueue}}, Concurrency: conc,
		ShutdownTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var recs []limitRecord
	var done atomic.Int64
	for _, t := range []*job.Task[limitArgs]{limitTaskA, limitTaskB, limitTaskC} {
		name := t.Name()
		worker.Handle(w, t, func(ctx context.Context, a limitArgs) error {
			start := time.Now()
			time.Sleep(time.Duration(a.Ms * float64(time.Millisecond)))
			r := limitRecord{task: name, start: start.UnixNano(), end: time.Now().UnixNano()}
			if info := job.FromContext(ctx); info != nil {
				r.attempt = info.Attempt
			}
			mu.Lock()
			recs = append(recs, r)
			mu.Unlock()
			done.Add(1)
			return nil
		})
	}
	if err := serveCounting(rdb, w, limitDone, &done); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	for _, r := range recs {
		fmt.Fprintf(out, "R %s %d %d %d\n", r.task, r.start, r.end, r.attempt)
	}
	return out.Flush()
}
