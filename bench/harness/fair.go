package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking/fairshare"
	"github.com/chronoq/chronoq/ranking/sim"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// The fair bench (issue 13): a noisy neighbour. One heavy key enqueues fairHeavyJobs jobs
// at once; fairLightKeys light keys each enqueue one job every fairLightEvery for the
// run's duration; fairWorkers worker processes at fairConc each run them.
const (
	fairQueue      = "fair"
	fairHeavyKey   = "heavy"
	fairBulkKey    = "bulk-b"
	fairLightKey   = "light-" // + two digits
	fairHeavyJobs  = 50000
	fairBulkJobs   = 50000
	fairBulkMs     = 2
	fairLightKeys  = 20
	fairLightMs    = 2
	fairLightEvery = 200 * time.Millisecond
	fairWorkers    = 2
	fairConc       = 10
	fairWindow     = 5 * time.Second
	fairChunk      = 5000 // jobs per bulk enqueue call: each chunk stamps its own enqueue time
	fairDone       = "bench:fair:done"
)

// fairModes are the fairness modes, in the order they run; fairBuilt are those chronoq
// has (all of them now; the flag parsing keeps refusing a mode that is not).
var (
	fairModes = []string{"off", "lru", "share"}
	fairBuilt = map[string]bool{"off": true, "lru": true, "share": true}
)

// FairOptions are the fair bench's flags.
type FairOptions struct {
	Modes    []string      // fairness modes, each built (ParseFairModes)
	HeavyMs  []int         // the heavy key's job run times, one variant each (2 and 20)
	Duration time.Duration // how long the light keys enqueue (30 s)
	Repeat   int           // runs per line; each value printed is the median of the runs
}

// ParseFairModes reads --mode: off, lru or share; empty: every built mode. A mode that
// is not built yet is an error (the caller exits 2).
func ParseFairModes(mode string) ([]string, error) {
	if mode == "" {
		var out []string
		for _, m := range fairModes {
			if fairBuilt[m] {
				out = append(out, m)
			}
		}
		return out, nil
	}
	for _, m := range fairModes {
		if m == mode {
			if !fairBuilt[m] {
				return nil, fmt.Errorf("fair: --mode %s is not built yet (issue 13); only off runs today", mode)
			}
			return []string{m}, nil
		}
	}
	return nil, fmt.Errorf("fair: unknown --mode %q (off, lru or share)", mode)
}

// ParseHeavyMs reads --heavy-ms: "2", "20" or "2,20"; empty: both.
func ParseHeavyMs(s string) ([]int, error) {
	if s == "" {
		return []int{2, 20}, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("fair: --heavy-ms %q: want positive ms, e.g. 2, 20 or 2,20", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// fairArgs are a fair bench job's arguments: its fair key, how long it runs and when it
// was enqueued (Unix ns, this machine's clock, which the worker processes share).
type fairArgs struct {
	Key   string  `msgpack:"k"`
	Ms    float64 `msgpack:"d"`
	EnqNs int64   `msgpack:"e"`
}

// One task per kind of key, so that a learned prediction (share mode) is right per kind.
var (
	fairHeavyTask = job.NewTask[fairArgs]("fair_heavy", job.Queue(fairQueue), job.MaxRetries(0))
	fairBulkTask  = job.NewTask[fairArgs]("fair_bulk", job.Queue(fairQueue), job.MaxRetries(0))
	fairLightTask = job.NewTask[fairArgs]("fair_light", job.Queue(fairQueue), job.MaxRetries(0))
)

// fairKeyOpts tags a job with its fair key (it also travels in the payload,
// fairArgs.Key, which is what the bench measures by).
func fairKeyOpts(key string) []job.Option { return []job.Option{job.FairKey(key)} }

// setFairMode puts the bench queue in a fairness mode.
func setFairMode(ctx context.Context, c *queue.Client, mode string) error {
	m, err := fairshare.ParseMode(mode)
	if err != nil {
		return err
	}
	return c.SetFairMode(ctx, fairQueue, m)
}

// Fair runs the fair bench and returns one line per (mode, heavy ms):
// `BENCH fair mode=M heavy_ms=H light_wait_p50_ms light_wait_p99_ms heavy_jobs_per_s share_error`.
// Its worker processes are this binary re-executed with childArgs (routed to FairChild).
func Fair(ctx context.Context, rdb *redis.Client, url string, o FairOptions, childArgs []string, progress func(string)) ([]Line, error) {
	if o.Duration < fairLightEvery || o.Repeat <= 0 {
		return nil, fmt.Errorf("fair: --duration must be at least %v and --repeat positive", fairLightEvery)
	}
	var out []Line
	for _, mode := range o.Modes {
		for _, hms := range o.HeavyMs {
			if hms > fairBulkMs {
				// Light keys are never backlogged once the queue is fair (0.2 slot of
				// demand), so with one backlogged key no window has two and share_error
				// would be vacuous: a second backlogged key of short jobs gives it a
				// pair whose job sizes differ (worker time vs job counts).
				progress(fmt.Sprintf("# fair heavy_ms=%d: a second backlogged key %s (%d jobs of %d ms) is enqueued with the heavy key, else share_error is vacuous (light keys are never backlogged once fair)",
					hms, fairBulkKey, fairBulkJobs, fairBulkMs))
			}
			var p50, p99, rate, share []float64
			for r := 0; r < o.Repeat; r++ {
				res, err := fairRun(ctx, rdb, url, mode, hms, o.Duration, childArgs, progress)
				if err != nil {
					return out, fmt.Errorf("fair mode=%s heavy_ms=%d: %w", mode, hms, err)
				}
				progress(fmt.Sprintf("# run %d: %s (jobs=%d light_jobs=%d heavy_backlog_s=%s wall_s=%s)", r+1, res.line(mode, hms),
					res.jobs, res.lightJobs, f1(res.heavyBacklogS), f1(res.wallS)))
				p50, p99, rate = append(p50, res.p50), append(p99, res.p99), append(rate, res.rate)
				if res.shareOK {
					share = append(share, res.share)
				}
			}
			m := fairResult{p50: median(p50), p99: median(p99), rate: median(rate)}
			if len(share) > 0 { // the median of the runs in which a window qualified
				m.share, m.shareOK = median(share), true
			}
			out = append(out, m.line(mode, hms))
		}
	}
	return out, nil
}

type fairResult struct {
	p50, p99, rate, share float64
	shareOK               bool
	jobs, lightJobs       int
	heavyBacklogS, wallS  float64
}

func (r fairResult) line(mode string, heavyMs int) Line {
	share := "NA"
	if r.shareOK {
		share = f3(r.share)
	}
	return Line{Head: "fair", KV: [][2]string{{"mode", mode}, {"heavy_ms", strconv.Itoa(heavyMs)},
		{"light_wait_p50_ms", f1(r.p50)}, {"light_wait_p99_ms", f1(r.p99)},
		{"heavy_jobs_per_s", f0(r.rate)}, {"share_error", share}}}
}

// fairRun is one run: fresh queue, worker processes up, then the heavy (and bulk) keys
// at once and the light keys on their ticks; it waits for every job, stops the workers
// and reads their records.
func fairRun(ctx context.Context, rdb *redis.Client, url, mode string, heavyMs int, d time.Duration, childArgs []string, progress func(string)) (fairResult, error) {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return fairResult{}, err
	}
	c := queue.NewClient(rdb, queue.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer c.Close()
	if err := setFairMode(ctx, c, mode); err != nil {
		return fairResult{}, err
	}
	perLight := int(d / fairLightEvery)
	bulk := heavyMs > fairBulkMs
	total := fairHeavyJobs + fairLightKeys*perLight
	if bulk {
		total += fairBulkJobs
	}

	// the worker processes
	procs, err := startChildren(childArgs, url, fairWorkers, fairConc)
	if err != nil {
		return fairResult{}, err
	}
	defer procs.stop()
	alive, stop, outs := procs.alive, procs.stop, procs.outs
	deadline := time.Now().Add(30 * time.Second)
	for n, _ := rdb.Get(ctx, "bench:ready").Int(); n < fairWorkers; n, _ = rdb.Get(ctx, "bench:ready").Int() {
		if time.Now().After(deadline) {
			return fairResult{}, fmt.Errorf("worker processes did not start")
		}
		if err := alive(); err != nil {
			return fairResult{}, err
		}
		time.Sleep(10 * time.Millisecond) // a bench harness waiting for processes to start
	}

	// the producers: heavy (and bulk-b) at once, light keys on their ticks
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2+fairLightKeys)
	backlog := func(t *job.Task[fairArgs], key string, n int, ms float64) {
		defer wg.Done()
		for done := 0; done < n; done += fairChunk {
			args := make([]fairArgs, min(fairChunk, n-done))
			now := time.Now().UnixNano()
			if done == 0 {
				now = t0.UnixNano() // "at once": the first chunk is enqueued from t0, the windows' origin
			}
			for i := range args {
				args[i] = fairArgs{Key: key, Ms: ms, EnqNs: now}
			}
			if _, err := queue.EnqueueMany(ctx, c, t, args, fairKeyOpts(key)...); err != nil {
				errs <- err
				return
			}
		}
	}
	wg.Add(1)
	go backlog(fairHeavyTask, fairHeavyKey, fairHeavyJobs, float64(heavyMs))
	if bulk {
		wg.Add(1)
		go backlog(fairBulkTask, fairBulkKey, fairBulkJobs, fairBulkMs)
	}
	for k := 0; k < fairLightKeys; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			key := fmt.Sprintf("%s%02d", fairLightKey, k)
			phase := time.Duration(k) * fairLightEvery / fairLightKeys // spread the keys over a tick
			for i := 0; i < perLight; i++ {
				time.Sleep(time.Until(t0.Add(phase + time.Duration(i)*fairLightEvery)))
				a := fairArgs{Key: key, Ms: fairLightMs, EnqNs: time.Now().UnixNano()}
				if _, err := queue.Enqueue(ctx, c, fairLightTask, a, fairKeyOpts(key)...); err != nil {
					errs <- err
					return
				}
			}
		}(k)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fairResult{}, err
	}
	progress(fmt.Sprintf("# fair: %d jobs enqueued in %s s", total, f1(time.Since(t0).Seconds())))

	// wait for every job, then stop the workers and read their records
	deadline = time.Now().Add(10 * time.Minute)
	for {
		n, err := rdb.Get(ctx, fairDone).Int()
		if err != nil && err != redis.Nil {
			return fairResult{}, err
		}
		if n >= total {
			break
		}
		if time.Now().After(deadline) {
			return fairResult{}, fmt.Errorf("%d of %d jobs done after 10 minutes", n, total)
		}
		if err := alive(); err != nil {
			return fairResult{}, err
		}
		time.Sleep(50 * time.Millisecond) // a bench harness watching for the end
	}
	wall := time.Since(t0).Seconds()
	stop()
	var recs []FairRecord
	for _, b := range outs {
		rs, err := readFairRecords(b)
		if err != nil {
			return fairResult{}, err
		}
		recs = append(recs, rs...)
	}
	if len(recs) != total {
		return fairResult{}, fmt.Errorf("worker processes recorded %d jobs of %d", len(recs), total)
	}
	return fairMeasure(recs, t0.UnixNano(), wall), nil
}

// fairMeasure computes a run's figures from the worker processes' records.
func fairMeasure(recs []FairRecord, origin int64, wallS float64) fairResult {
	var waits []float64
	for _, r := range recs {
		if strings.HasPrefix(r.Key, fairLightKey) {
			waits = append(waits, float64(r.StartNs-r.EnqNs)/1e6)
		}
	}
	sort.Float64s(waits)
	res := fairResult{p50: sim.Percentile(waits, 0.5), p99: sim.Percentile(waits, 0.99),
		rate: BackloggedRate(recs, fairHeavyKey), jobs: len(recs), lightJobs: len(waits), wallS: wallS}
	for _, s := range backlogs(recs)[fairHeavyKey] {
		res.heavyBacklogS += float64(s.to-s.from) / 1e9
	}
	res.share, res.shareOK = SlidingShareError(recs, origin, fairWindow, nil)
	return res
}

// readFairRecords parses a worker process's "R key enq start end" lines.
func readFairRecords(r io.Reader) ([]FairRecord, error) {
	var out []FairRecord
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 5 || f[0] != "R" {
			continue
		}
		var ns [3]int64
		for i := range ns {
			v, err := strconv.ParseInt(f[2+i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("worker process record %q: %v", sc.Text(), err)
			}
			ns[i] = v
		}
		out = append(out, FairRecord{Key: f[1], EnqNs: ns[0], StartNs: ns[1], EndNs: ns[2]})
	}
	return out, sc.Err()
}

// FairChild is a fair bench worker process: its handlers sleep each job's run time and
// record (key, enqueue, start, end); it counts finished jobs in Redis (a few times a
// second, not per job) and, on SIGTERM, stops and prints its records.
func FairChild(url string, conc int) error {
	rdb, w, err := childWorker(url, worker.Config{Queues: []worker.QueueConfig{{Name: fairQueue}}, Concurrency: conc,
		ShutdownTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var recs []FairRecord
	var done atomic.Int64
	run := func(ctx context.Context, a fairArgs) error {
		t := time.Now()
		time.Sleep(time.Duration(a.Ms * float64(time.Millisecond)))
		start := t.UnixNano()
		r := FairRecord{Key: a.Key, EnqNs: a.EnqNs, StartNs: start, EndNs: start + time.Since(t).Nanoseconds()}
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
		done.Add(1)
		return nil
	}
	for _, t := range []*job.Task[fairArgs]{fairHeavyTask, fairBulkTask, fairLightTask} {
		worker.Handle(w, t, run)
	}
	if err := serveCounting(rdb, w, fairDone, &done); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	for _, r := range recs {
		fmt.Fprintf(out, "R %s %d %d %d\n", r.Key, r.EnqNs, r.StartNs, r.EndNs)
	}
	return out.Flush()
}

// serveCounting runs a bench worker process's worker until SIGTERM: it says it is
// ready (bench:ready), adds the jobs done to doneKey a few times a second (not per
// job), and stops the worker, which records every outcome first.
func serveCounting(rdb *redis.Client, w *worker.Worker, doneKey string, done *atomic.Int64) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := w.Start(context.Background()); err != nil {
		return err
	}
	rdb.Incr(ctx, "bench:ready")
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var told int64
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-tick.C:
			if n := done.Load(); n > told {
				if err := rdb.IncrBy(context.Background(), doneKey, n-told).Err(); err == nil {
					told = n
				}
			}
		}
	}
	return w.Stop(context.Background())
}

// children are a bench's worker processes (this binary, re-executed).
type children struct {
	cmds    []*exec.Cmd
	outs    []*bytes.Buffer // each one's stdout
	exited  chan error
	stopped bool
}

// startChildren starts n worker processes at concurrency conc.
func startChildren(childArgs []string, url string, n, conc int) (*children, error) {
	c := &children{exited: make(chan error, n), outs: make([]*bytes.Buffer, n)}
	for p := 0; p < n; p++ {
		cmd := selfCmd(append(append([]string(nil), childArgs...), "--redis", url, "--conc", strconv.Itoa(conc))...)
		c.outs[p] = &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = c.outs[p], os.Stderr
		if err := cmd.Start(); err != nil {
			c.stop()
			return nil, err
		}
		c.cmds = append(c.cmds, cmd)
		go func() { c.exited <- cmd.Wait() }()
	}
	return c, nil
}

// stop ends the processes (SIGTERM: each prints its records) and waits for them.
func (c *children) stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	for _, cmd := range c.cmds {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	for range c.cmds {
		<-c.exited
	}
}

// alive fails once a process has exited before stop.
func (c *children) alive() error {
	select {
	case err := <-c.exited:
		c.exited <- err // counted again by stop
		return fmt.Errorf("a worker process exited early: %v", err)
	default:
		return nil
	}
}
