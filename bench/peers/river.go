package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chronoq/chronoq/bench/harness"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// River (github.com/riverqueue/river, pgx v5 driver) on chronoq's W1 and W2, against
// PostgreSQL. Its lines carry system=river and config=default|tuned; the Redis counters
// of the other systems' lines do not apply, and Postgres's own take their place:
// pg_cpu_us_per_job (CPU of every process of the local Postgres server, from /proc,
// when the server runs on this machine) and pg_bytes_per_job (river_job's table and
// index size, filled over empty).

// riverPoolConns is the size of each pgx pool (producer and worker process): go-redis's
// default pool, which the Redis systems get, is 10 per CPU.
const riverPoolConns = 20

// riverConfig is River's client configuration named name: "default" leaves every
// setting at River's default; "tuned" is tuned for throughput and latency (fetch
// cooldown and poll interval at River's minimum, 1 ms).
func riverConfig(name string) (*river.Config, error) {
	c := &river.Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	switch name {
	case "default":
	case "tuned":
		c.FetchCooldown = time.Millisecond
		c.FetchPollInterval = time.Millisecond
	default:
		return nil, fmt.Errorf("unknown River config %q (default or tuned)", name)
	}
	return c, nil
}

// noopArgs is the bench's no-op job; Ns (W2) is its enqueue time.
type noopArgs struct {
	Ns int64 `json:"ns,omitempty"`
}

func (noopArgs) Kind() string                 { return "noop" }
func (noopArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: "bench"} }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	rec *harness.Recorder
}

func (w *noopWorker) Work(ctx context.Context, j *river.Job[noopArgs]) error {
	w.rec.Start(j.Args.Ns)
	w.rec.Done()
	return nil
}

func newPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = riverPoolConns
	return pgxpool.NewWithConfig(ctx, cfg)
}

// riverSys is River's producer side: an insert-only client with the config under test
// (its fetch cooldown also limits how often inserts send a NOTIFY).
type riverSys struct {
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx]
	pgURL  string
	config string
	pgPID  int // the Postgres server's process id, 0 when its /proc is not readable
}

func newRiver(ctx context.Context, pool *pgxpool.Pool, pgURL, config string) (*riverSys, error) {
	cfg, err := riverConfig(config)
	if err != nil {
		return nil, err
	}
	client, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		return nil, err
	}
	return &riverSys{pool: pool, client: client, pgURL: pgURL, config: config, pgPID: postmasterPID(ctx, pool)}, nil
}

// migrateRiver runs River's migrations up to the latest.
func migrateRiver(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return "", err
	}
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return "", err
	}
	all := m.AllVersions()
	return fmt.Sprintf("# river: %d migrations applied now, schema at version %d", len(res.Versions), all[len(all)-1].Version), nil
}

// clear empties River's tables (all but river_migration).
func (s *riverSys) clear(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, `SELECT quote_ident(tablename) FROM pg_tables
		WHERE schemaname = current_schema() AND tablename LIKE 'river\_%' AND tablename <> 'river_migration'`)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(tables) == 0 {
		return fmt.Errorf("no River tables: were the migrations run?")
	}
	_, err = s.pool.Exec(ctx, "TRUNCATE "+strings.Join(tables, ", ")+" RESTART IDENTITY")
	return err
}

func (s *riverSys) enqueueOne(ctx context.Context, ns int64) error {
	_, err := s.client.Insert(ctx, noopArgs{Ns: ns}, nil)
	return err
}

func (s *riverSys) enqueueMany(ctx context.Context, n int) error {
	params := make([]river.InsertManyParams, n)
	for i := range params {
		params[i] = river.InsertManyParams{Args: noopArgs{}}
	}
	_, err := s.client.InsertMany(ctx, params)
	return err
}

func (s *riverSys) enqueue(ctx context.Context, mode string, n int) (float64, error) {
	start := time.Now()
	switch mode {
	case "single":
		for i := 0; i < n; i++ {
			if err := s.enqueueOne(ctx, 0); err != nil {
				return 0, err
			}
		}
	case "bulk":
		if err := s.enqueueMany(ctx, n); err != nil {
			return 0, err
		}
	case "parallel16":
		if err := harness.Parallel(n, 16, func() error { return s.enqueueOne(ctx, 0) }); err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func (s *riverSys) line(head string, kv ...[2]string) harness.Line {
	return harness.Line{Head: head, KV: append([][2]string{{"system", "river"}, {"config", s.config}}, kv...)}
}

// riverW1 is harness.W1 for River: enqueue single, bulk (InsertMany) and parallel16,
// then drain at concurrency 10 and 50, each the median of repeat runs.
func riverW1(ctx context.Context, s *riverSys, jobs, repeat int, progress func(string)) ([]harness.Line, error) {
	var out []harness.Line
	for _, mode := range []string{"single", "bulk", "parallel16"} {
		var runs []harness.Line
		for r := 0; r < repeat; r++ {
			if err := s.clear(ctx); err != nil {
				return nil, err
			}
			before := s.pgCPU()
			rate, err := s.enqueue(ctx, mode, jobs)
			if err != nil {
				return nil, fmt.Errorf("river enqueue %s: %w", mode, err)
			}
			if cpu := s.pgCPU() - before; s.pgPID != 0 {
				progress(fmt.Sprintf("# river/%s enqueue %s: pg_cpu_us_per_job=%s", s.config, mode, harness.Fmt(cpu*1e6/float64(jobs), 2)))
			}
			l := s.line("w1", [2]string{"phase", "enqueue"}, [2]string{"mode", mode}, [2]string{"jobs_per_s", harness.Fmt(rate, 0)})
			progress(fmt.Sprintf("# run %d: %s", r+1, l))
			runs = append(runs, l)
		}
		out = append(out, medianLine(runs, "jobs_per_s"))
	}
	for _, conc := range []int{10, 50} {
		var runs []harness.Line
		for r := 0; r < repeat; r++ {
			l, err := s.drain(ctx, jobs, conc)
			if err != nil {
				return nil, fmt.Errorf("river drain conc=%d: %w", conc, err)
			}
			progress(fmt.Sprintf("# run %d: %s", r+1, l))
			runs = append(runs, l)
		}
		out = append(out, medianLine(runs, "jobs_per_s"))
	}
	return out, nil
}

// drain fills the queue with n jobs in bulk and times one worker process running them
// all, from the first job's start to the moment the worker's Stop returns.
func (s *riverSys) drain(ctx context.Context, n, conc int) (harness.Line, error) {
	if err := s.clear(ctx); err != nil {
		return harness.Line{}, err
	}
	empty, err := s.jobBytes(ctx)
	if err != nil {
		return harness.Line{}, err
	}
	if err := s.enqueueMany(ctx, n); err != nil {
		return harness.Line{}, err
	}
	filled, err := s.jobBytes(ctx)
	if err != nil {
		return harness.Line{}, err
	}
	cpu := s.pgCPU()
	res, err := s.runChild(ctx, "w1", conc, n, nil)
	if err != nil {
		return harness.Line{}, err
	}
	cpu = s.pgCPU() - cpu
	left, err := s.countAvailable(ctx)
	if err != nil {
		return harness.Line{}, err
	}
	if left != 0 {
		return harness.Line{}, fmt.Errorf("%d jobs not completed after the worker stopped", left)
	}
	secs := float64(res.DoneNs-res.FirstStartNs) / 1e9
	kv := [][2]string{{"phase", "drain"}, {"conc", strconv.Itoa(conc)}, {"jobs_per_s", harness.Fmt(float64(n)/secs, 0)}}
	if s.pgPID != 0 {
		kv = append(kv, [2]string{"pg_cpu_us_per_job", harness.Fmt(cpu*1e6/float64(n), 2)})
	}
	kv = append(kv, [2]string{"pg_bytes_per_job", harness.Fmt(float64(filled-empty)/float64(n), 0)})
	return s.line("w1", kv...), nil
}

func (s *riverSys) jobBytes(ctx context.Context) (int64, error) {
	var b int64
	err := s.pool.QueryRow(ctx, "SELECT pg_total_relation_size('river_job')").Scan(&b)
	return b, err
}

func (s *riverSys) countAvailable(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state <> 'completed'").Scan(&n)
	return n, err
}

// riverW2 is harness.W2 for River: an idle worker process (concurrency 10), jobs
// enqueued 20 ms apart, each carrying its enqueue time; the worker measures
// enqueue-to-start.
func riverW2(ctx context.Context, s *riverSys, jobs int) (harness.Line, error) {
	if err := s.clear(ctx); err != nil {
		return harness.Line{}, err
	}
	res, err := s.runChild(ctx, "w2", 10, jobs, func() error {
		time.Sleep(time.Second) // as harness.W2: give the worker a second to go idle
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < jobs; i++ {
			<-tick.C
			if err := s.enqueueOne(ctx, time.Now().UnixNano()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return harness.Line{}, err
	}
	if len(res.LatenciesNs) == 0 {
		return harness.Line{}, fmt.Errorf("worker process recorded no latencies")
	}
	lat := make([]float64, len(res.LatenciesNs))
	for i, ns := range res.LatenciesNs {
		lat[i] = float64(ns) / 1e6
	}
	sort.Float64s(lat)
	pct := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return s.line("w2", [2]string{"p50_ms", harness.Fmt(pct(0.50), 3)}, [2]string{"p95_ms", harness.Fmt(pct(0.95), 3)},
		[2]string{"p99_ms", harness.Fmt(pct(0.99), 3)}, [2]string{"max_ms", harness.Fmt(lat[len(lat)-1], 3)}), nil
}

// runChild runs one River worker process (this binary re-executed as child-river) and
// reads its result line. When during is not nil, it runs once the process says it is
// ready (its client started).
func (s *riverSys) runChild(ctx context.Context, workload string, conc, n int, during func() error) (harness.ChildResult, error) {
	self, err := os.Executable()
	if err != nil {
		return harness.ChildResult{}, err
	}
	cmd := exec.CommandContext(ctx, self, "child-river", "--pg", s.pgURL, "--river-config", s.config,
		"--child-workload", workload, "--conc", strconv.Itoa(conc), "--jobs", strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return harness.ChildResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return harness.ChildResult{}, err
	}
	ready := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		var last string
		for sc.Scan() {
			switch t := sc.Text(); {
			case t == "ready":
				close(ready)
			case strings.HasPrefix(t, "{"):
				last = t
			}
		}
		lines <- last
	}()
	timeout := time.After(10 * time.Minute)
	kill := func(err error) (harness.ChildResult, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return harness.ChildResult{}, err
	}
	if during != nil {
		select {
		case <-ready:
		case last := <-lines:
			lines <- last // the process ended before it was ready: report how below
		case <-time.After(30 * time.Second):
			return kill(fmt.Errorf("worker process never got ready"))
		}
		select {
		case <-ready:
			if err := during(); err != nil {
				return kill(err)
			}
		default:
		}
	}
	var last string
	select {
	case last = <-lines:
	case <-timeout:
		return kill(fmt.Errorf("worker process did not finish in 10 minutes"))
	}
	if err := cmd.Wait(); err != nil {
		return harness.ChildResult{}, fmt.Errorf("worker process: %w", err)
	}
	var res harness.ChildResult
	if err := json.Unmarshal([]byte(last), &res); err != nil {
		return harness.ChildResult{}, fmt.Errorf("worker process printed no result: %v", err)
	}
	return res, nil
}

// riverChild is River's worker process: a client with the named config serving queue
// "bench" at MaxWorkers conc; it says "ready" once started, runs n jobs, stops (every
// completion written), and prints the result line.
func riverChild(pgURL, config string, conc, n int) error {
	ctx := context.Background()
	pool, err := newPool(ctx, pgURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	cfg, err := riverConfig(config)
	if err != nil {
		return err
	}
	rec := harness.NewRecorder(n)
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{rec: rec})
	cfg.Workers = workers
	cfg.Queues = map[string]river.QueueConfig{"bench": {MaxWorkers: conc}}
	client, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	fmt.Println("ready")
	<-rec.Reached
	if err := client.Stop(ctx); err != nil {
		return err
	}
	rec.Print(time.Now().UnixNano())
	return nil
}

// medianLine keeps the run whose key value is the median of the runs (as the harness).
func medianLine(lines []harness.Line, key string) harness.Line {
	vals := make([]float64, len(lines))
	for i, l := range lines {
		vals[i] = l.Get(key)
	}
	m := harness.Median(vals)
	for _, l := range lines {
		if l.Get(key) == m {
			return l
		}
	}
	return lines[0]
}

// postmasterPID is the local Postgres server's process id (the parent of this
// connection's backend), or 0 when the server's /proc entries cannot be read here.
func postmasterPID(ctx context.Context, pool *pgxpool.Pool) int {
	var backend int
	if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return 0
	}
	st, err := procStat(backend)
	if err != nil || len(st) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(st[1])
	if _, err := procStat(ppid); err != nil {
		return 0
	}
	return ppid
}

// procStat returns the fields of /proc/pid/stat after the command name, from the state
// (field 3) on.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil, io.ErrUnexpectedEOF
	}
	return strings.Fields(string(b[i+1:])), nil
}

// pgCPU is the CPU seconds used so far by the Postgres server: its postmaster (its own
// time and its reaped children's) and every live child process (backends, checkpointer,
// WAL writer, autovacuum...). Linux's clock tick is 100 Hz.
func (s *riverSys) pgCPU() float64 {
	if s.pgPID == 0 {
		return 0
	}
	ticks := func(st []string, from, to int) (t int64) {
		for i := from; i <= to && i < len(st); i++ {
			v, _ := strconv.ParseInt(st[i], 10, 64)
			t += v
		}
		return t
	}
	// fields after the name, 0-based: 1 ppid, 11 utime, 12 stime, 13 cutime, 14 cstime
	st, err := procStat(s.pgPID)
	if err != nil {
		return 0
	}
	total := ticks(st, 11, 14)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := procStat(pid)
		if err != nil || len(st) < 13 || st[1] != strconv.Itoa(s.pgPID) {
			continue
		}
		total += ticks(st, 11, 12)
	}
	return float64(total) / 100
}
