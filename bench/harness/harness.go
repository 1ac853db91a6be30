package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// System is a queue system under test.
type System interface {
	Name() string
	// EnqueueOne enqueues one no-op job on queue "bench"; enqueuedNs, when not 0, is
	// carried in the job so the worker can measure enqueue-to-start (W2).
	EnqueueOne(ctx context.Context, enqueuedNs int64) error
	// EnqueueBulk enqueues n no-op jobs as fast as the system's API allows;
	// ok is false when the system has no bulk API.
	EnqueueBulk(ctx context.Context, n int) (ok bool, err error)
	// WorkerCmd is the command that runs one worker process.
	WorkerCmd(args ...string) *Cmd
}

// Cmd is a worker process command.
type Cmd = exec.Cmd

// selfCmd re-executes the running binary with args.
func selfCmd(args ...string) *Cmd {
	self, _ := os.Executable()
	return exec.Command(self, args...)
}

// Preparer is a System that sets itself up after each flush (e.g. a ranking mode).
type Preparer interface {
	Prepare(ctx context.Context) error
}

func prepare(ctx context.Context, sys System) error {
	if p, ok := sys.(Preparer); ok {
		return p.Prepare(ctx)
	}
	return nil
}

// ChildResult is what a worker process reports on its last stdout line.
type ChildResult struct {
	FirstStartNs int64   `json:"first_start_ns"`
	DoneNs       int64   `json:"done_ns"`
	LatenciesNs  []int64 `json:"latencies_ns,omitempty"`
	// CPUNs is the worker process's CPU time (user and system) from the first job's
	// start to the last job's end: what the worker side costs, apart from Redis'
	// (without the Stop that records the last outcomes, a few ms)
	CPUNs int64 `json:"cpu_ns,omitempty"`
}

// Stats are the Redis server counters a phase is judged by.
type Stats struct {
	Commands  int64
	CPUSec    float64
	UsedBytes int64
}

// ReadStats reads INFO stats, cpu and memory.
func ReadStats(ctx context.Context, rdb *redis.Client) (Stats, error) {
	info, err := rdb.Info(ctx, "stats", "cpu", "memory").Result()
	if err != nil {
		return Stats{}, err
	}
	var s Stats
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "total_commands_processed":
			s.Commands, _ = strconv.ParseInt(v, 10, 64)
		case "used_cpu_sys", "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			s.CPUSec += f
		case "used_memory":
			s.UsedBytes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return s, nil
}

// Options of a run.
type Options struct {
	Jobs   int // W1 jobs (20,000)
	Repeat int // runs per measurement; the median is reported
}

// Line is one BENCH line: its name part and ordered key/values.
type Line struct {
	Head string
	KV   [][2]string
}

func (l Line) String() string {
	var b strings.Builder
	b.WriteString("BENCH " + l.Head)
	for _, kv := range l.KV {
		b.WriteString(" " + kv[0] + "=" + kv[1])
	}
	return b.String()
}

// Get returns a value of the line.
func (l Line) Get(key string) float64 {
	for _, kv := range l.KV {
		if kv[0] == key {
			f, _ := strconv.ParseFloat(kv[1], 64)
			return f
		}
	}
	return 0
}

func f0(x float64) string { return strconv.FormatFloat(x, 'f', 0, 64) }
func f1(x float64) string { return strconv.FormatFloat(x, 'f', 1, 64) }
func f2(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }
func f3(x float64) string { return strconv.FormatFloat(x, 'f', 3, 64) }

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// medianLine keeps the run whose key value is the median of the runs.
func medianLine(lines []Line, key string) Line {
	vals := make([]float64, len(lines))
	for i, l := range lines {
		vals[i] = l.Get(key)
	}
	m := median(vals)
	for _, l := range lines {
		if l.Get(key) == m {
			return l
		}
	}
	return lines[0]
}

// W1 runs the throughput workload and returns its lines (medians of opts.Repeat runs).
func W1(ctx context.Context, sys System, rdb *redis.Client, opts Options, tag string, progress func(string)) ([]Line, error) {
	var out []Line
	enqueueModes := []string{"single", "bulk", "parallel16"}
	for _, mode := range enqueueModes {
		var runs []Line
		for r := 0; r < opts.Repeat; r++ {
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				return nil, err
			}
			before, err := ReadStats(ctx, rdb)
			if err != nil {
				return nil, err
			}
			rate, ok, err := enqueueRate(ctx, sys, mode, opts.Jobs)
			if err != nil {
				return nil, fmt.Errorf("%s enqueue %s: %w", sys.Name(), mode, err)
			}
			if !ok {
				break
			}
			after, err := ReadStats(ctx, rdb)
			if err != nil {
				return nil, err
			}
			progress(fmt.Sprintf("# %s enqueue %s: redis_cpu_us_per_job=%s cmds_per_job=%s", sys.Name(), mode,
				f2((after.CPUSec-before.CPUSec)*1e6/float64(opts.Jobs)), f2(float64(after.Commands-before.Commands)/float64(opts.Jobs))))
			l := Line{Head: "w1", KV: [][2]string{{"phase", "enqueue"}, {"mode", mode}, {"jobs_per_s", f0(rate)}}}
			if tag != "" {
				l.KV = append([][2]string{{"system", tag}}, l.KV...)
			}
			progress(fmt.Sprintf("# run %d: %s", r+1, l))
			runs = append(runs, l)
		}
		if len(runs) > 0 {
			out = append(out, medianLine(runs, "jobs_per_s"))
		}
	}
	for _, conc := range []int{10, 50} {
		var runs []Line
		for r := 0; r < opts.Repeat; r++ {
			l, err := drain(ctx, sys, rdb, opts.Jobs, conc, tag)
			if err != nil {
				return nil, fmt.Errorf("%s drain conc=%d: %w", sys.Name(), conc, err)
			}
			progress(fmt.Sprintf("# run %d: %s", r+1, l))
			runs = append(runs, l)
		}
		out = append(out, medianLine(runs, "jobs_per_s"))
	}
	return out, nil
}

func enqueueRate(ctx context.Context, sys System, mode string, n int) (float64, bool, error) {
	start := time.Now()
	switch mode {
	case "single":
		for i := 0; i < n; i++ {
			if err := sys.EnqueueOne(ctx, 0); err != nil {
				return 0, true, err
			}
		}
	case "bulk":
		ok, err := sys.EnqueueBulk(ctx, n)
		if !ok || err != nil {
			return 0, ok, err
		}
	case "parallel16":
		if err := Parallel(n, 16, func() error { return sys.EnqueueOne(ctx, 0) }); err != nil {
			return 0, true, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), true, nil
}

func drain(ctx context.Context, sys System, rdb *redis.Client, n, conc int, tag string) (Line, error) {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return Line{}, err
	}
	if err := prepare(ctx, sys); err != nil {
		return Line{}, err
	}
	empty, err := ReadStats(ctx, rdb)
	if err != nil {
		return Line{}, err
	}
	ok, err := sys.EnqueueBulk(ctx, n)
	if err != nil {
		return Line{}, err
	}
	if !ok { // no bulk API: fill with parallel single enqueues
		if _, _, err := enqueueRate(ctx, sys, "parallel16", n); err != nil {
			return Line{}, err
		}
	}
	filled, err := ReadStats(ctx, rdb)
	if err != nil {
		return Line{}, err
	}
	res, err := runChild(ctx, sys, "w1", conc, n)
	if err != nil {
		return Line{}, err
	}
	after, err := ReadStats(ctx, rdb)
	if err != nil {
		return Line{}, err
	}
	secs := float64(res.DoneNs-res.FirstStartNs) / 1e9
	l := Line{Head: "w1", KV: [][2]string{
		{"phase", "drain"}, {"conc", strconv.Itoa(conc)},
		{"jobs_per_s", f0(float64(n) / secs)},
		{"cmds_per_job", f2(float64(after.Commands-filled.Commands) / float64(n))},
		{"redis_cpu_us_per_job", f2((after.CPUSec - filled.CPUSec) * 1e6 / float64(n))},
		{"worker_cpu_us_per_job", f2(float64(res.CPUNs) / 1e3 / float64(n))},
		{"bytes_per_job", f0(float64(filled.UsedBytes-empty.UsedBytes) / float64(n))},
	}}
	if tag != "" {
		l.KV = append([][2]string{{"system", tag}}, l.KV...)
	}
	return l, nil
}

// runChildWhile starts a worker process, waits until it is ready, runs during (the
// producer's part), then waits for the process to finish and reads its result line.
func runChildWhile(ctx context.Context, rdb *redis.Client, cmd *Cmd, during func() error) (ChildResult, error) {
	if err := rdb.Del(ctx, "bench:ready").Err(); err != nil {
		return ChildResult{}, err
	}
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return ChildResult{}, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for rdb.Exists(ctx, "bench:ready").Val() == 0 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return ChildResult{}, fmt.Errorf("worker process never got ready")
		}
		time.Sleep(10 * time.Millisecond) // a bench harness waiting for a process to start
	}
	if err := during(); err != nil {
		_ = cmd.Process.Kill()
		return ChildResult{}, err
	}
	if err := cmd.Wait(); err != nil {
		return ChildResult{}, fmt.Errorf("worker process: %w", err)
	}
	var res ChildResult
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return ChildResult{}, fmt.Errorf("worker process printed no result: %v", err)
	}
	return res, nil
}

// runChild runs one worker process and reads its result line.
func runChild(ctx context.Context, sys System, workload string, conc, n int) (ChildResult, error) {
	cmd := sys.WorkerCmd("--child-workload", workload, "--conc", strconv.Itoa(conc), "--jobs", strconv.Itoa(n))
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return ChildResult{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return ChildResult{}, fmt.Errorf("worker process: %w", err)
		}
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		return ChildResult{}, fmt.Errorf("worker process did not finish in 5 minutes")
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return ChildResult{}, ctx.Err()
	}
	var res ChildResult
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var last string
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "{") {
			last = sc.Text()
		}
	}
	if err := json.Unmarshal([]byte(last), &res); err != nil {
		return ChildResult{}, fmt.Errorf("worker process printed no result: %v", err)
	}
	return res, nil
}

// W4 measures one worker process's dequeue rate in the queue's current mode with a
// backlog of backlog no-op jobs over five task types, draining drain of them (a small
// share of a large backlog, so the backlog barely moves while it is measured).
func W4(ctx context.Context, sys *Chronoq, rdb *redis.Client, backlog, drain int, progress func(string)) (Line, error) {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return Line{}, err
	}
	if err := sys.Prepare(ctx); err != nil {
		return Line{}, err
	}
	if err := sys.EnqueueTypes(ctx, backlog, func(done int) {
		if done%200000 == 0 {
			progress(fmt.Sprintf("# w4 backlog: %d enqueued", done))
		}
	}); err != nil {
		return Line{}, err
	}
	res, err := runChild(ctx, sys, "w1", 10, min(drain, backlog))
	if err != nil {
		return Line{}, err
	}
	secs := float64(res.DoneNs-res.FirstStartNs) / 1e9
	return Line{Head: "w4", KV: [][2]string{{"backlog", strconv.Itoa(backlog)}, {"jobs_per_s", f0(float64(min(drain, backlog)) / secs)}}}, nil
}

// W2 runs the idle-latency workload: an idle worker process, jobs enqueued 20 ms apart,
// each carrying its enqueue time; the worker measures enqueue-to-start.
func W2(ctx context.Context, sys System, rdb *redis.Client, jobs int, tag string) (Line, error) {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return Line{}, err
	}
	cmd := sys.WorkerCmd("--child-workload", "w2", "--conc", "10", "--jobs", strconv.Itoa(jobs))
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return Line{}, err
	}
	if err := cmd.Start(); err != nil {
		return Line{}, err
	}
	// the worker says it is up by writing a key; give it a second to go idle
	deadline := time.Now().Add(30 * time.Second)
	for rdb.Exists(ctx, "bench:ready").Val() == 0 {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return Line{}, fmt.Errorf("worker process never got ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	for i := 0; i < jobs; i++ {
		<-tick.C
		if err := sys.EnqueueOne(ctx, time.Now().UnixNano()); err != nil {
			tick.Stop()
			_ = cmd.Process.Kill()
			return Line{}, err
		}
	}
	tick.Stop()
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		return Line{}, fmt.Errorf("worker process: %w", err)
	}
	var res ChildResult
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return Line{}, fmt.Errorf("worker process printed no result: %v", err)
	}
	lat := make([]float64, len(res.LatenciesNs))
	for i, ns := range res.LatenciesNs {
		lat[i] = float64(ns) / 1e6
	}
	sort.Float64s(lat)
	pct := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	l := Line{Head: "w2", KV: [][2]string{{"p50_ms", f3(pct(0.50))}, {"p95_ms", f3(pct(0.95))}, {"p99_ms", f3(pct(0.99))}, {"max_ms", f3(lat[len(lat)-1])}}}
	if tag != "" {
		l.KV = append([][2]string{{"system", tag}}, l.KV...)
	}
	return l, nil
}

// ChildFlags are the flags a worker process gets.
type ChildFlags struct {
	Redis    string
	Workload string
	Conc     int
	Jobs     int
}

// Recorder collects what a worker process measures.
type Recorder struct {
	mu      sync.Mutex
	first   int64
	count   int
	lat     []int64
	target  int
	cpu0    int64 // the process's CPU time at the first start
	cpu1    int64 // and as the last job ended
	Reached chan struct{}
}

// NewRecorder expects n jobs.
func NewRecorder(n int) *Recorder { return &Recorder{target: n, Reached: make(chan struct{})} }

// Start is called as a handler begins; payload is the job's payload (W2: enqueue ns).
func (r *Recorder) Start(payloadNs int64) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	if r.first == 0 {
		r.first = now
		r.cpu0 = processCPUNs()
	}
	if payloadNs > 0 {
		r.lat = append(r.lat, now-payloadNs)
	}
	r.mu.Unlock()
}

// Done is called as a handler ends.
func (r *Recorder) Done() {
	r.mu.Lock()
	r.count++
	if r.count == r.target {
		r.cpu1 = processCPUNs() // before Stop and any profile writing
		close(r.Reached)
	}
	r.mu.Unlock()
}

// Print writes the result line; doneNs is when every outcome was recorded.
func (r *Recorder) Print(doneNs int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	data, _ := json.Marshal(ChildResult{FirstStartNs: r.first, DoneNs: doneNs, LatenciesNs: r.lat, CPUNs: r.cpu1 - r.cpu0})
	fmt.Println(string(data))
}

// Median is exported for the peers' ratio.
func Median(xs []float64) float64 { return median(xs) }

// Fmt formats like the BENCH lines do.
func Fmt(x float64, digits int) string {
	switch digits {
	case 0:
		return f0(x)
	case 1:
		return f1(x)
	case 3:
		return f3(x)
	}
	return f2(x)
}

// Parallel calls one n times from g goroutines at once (each its share of the calls)
// and returns the first error; a goroutine stops at its own first error.
func Parallel(n, g int, one func() error) error {
	var wg sync.WaitGroup
	errs := make(chan error, g)
	for k := 0; k < g; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			for i := k; i < n; i += g {
				if err := one(); err != nil {
					errs <- err
					return
				}
			}
		}(k)
	}
	wg.Wait()
	close(errs)
	return <-errs
}
