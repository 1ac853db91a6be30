package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/internal/devredis"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/chronoq/chronoq/worker/prommetrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// cmdDev runs an embedded Redis (miniredis), a worker with the demo tasks and the
// user's, and enqueues demo jobs whose results it prints. It needs no Redis installed.
func cmdDev(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "dev", "dev [--exit] [--dashboard-addr 127.0.0.1:8080]")
	addr := fs.String("addr", "127.0.0.1:0", "address of the embedded Redis (port 0: any free port)")
	queues := fs.String("queues", "ml:1,data:2,default:3", "queues the worker serves, as for run: add your own tasks' queues")
	dashAddr := fs.String("dashboard-addr", "127.0.0.1:8080", "dashboard address (loopback; when taken, any free port)")
	exit := fs.Bool("exit", false, "exit once the demo jobs have ended (for scripts and tests)")
	verbose := fs.Bool("v", false, "debug logging")
	if _, err := parseArgs(fs, args, 0, 0); err != nil {
		return flagExit(err)
	}
	m, stopRedis, err := devredis.Embedded(*addr)
	if err != nil {
		fmt.Fprintln(e.err, "chronoq-worker dev: embedded Redis:", err)
		return ExitFailure
	}
	defer stopRedis()

	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	cf := connFlags{verbose: *verbose}
	log := cf.logger(e.err)
	c := queue.NewClient(rdb, queue.Config{Logger: log})
	defer c.Close()
	qs, err := parseQueues(*queues)
	if err != nil {
		return e.usageErr("--queues: %v", err)
	}
	for _, need := range []string{"ml", "data", "default"} { // the demo jobs' queues
		if !slices.ContainsFunc(qs, func(q worker.QueueConfig) bool { return q.Name == need }) {
			qs = append(qs, worker.QueueConfig{Name: need})
		}
	}
	reg := prometheus.NewRegistry()
	obs, err := prommetrics.New(reg)
	if err != nil {
		fmt.Fprintln(e.err, "chronoq-worker dev:", err)
		return ExitFailure
	}
	w, err := worker.New(c, worker.Config{Queues: qs, Concurrency: 8, Logger: log, ShutdownTimeout: 5 * time.Second, Observer: obs})
	if err != nil {
		fmt.Fprintln(e.err, "chronoq-worker dev:", err)
		return ExitFailure
	}
	e.register(w)
	registerMissingDemo(w)
	runCtx, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := w.Start(runCtx); err != nil {
		fmt.Fprintln(e.err, "chronoq-worker dev:", err)
		return ExitFailure
	}
	defer w.Stop(context.Background())
	for _, q := range qs {
		_ = c.DeclareQueue(runCtx, q.Name)
	}
	b, err := beat.New(c, beat.Config{Entries: demoBeat(), Logger: log})
	if err != nil {
		fmt.Fprintln(e.err, "chronoq-worker dev: beat:", err)
		return ExitFailure
	}
	if err := b.Start(runCtx); err != nil {
		fmt.Fprintln(e.err, "chronoq-worker dev: beat:", err)
		return ExitFailure
	}
	beatDone := make(chan struct{})
	go func() { defer close(beatDone); _ = b.Run(runCtx) }()
	defer func() { cancel(); <-beatDone }()
	url, stopDash, err := serveDevDashboard(*dashAddr, c, b, reg, log)
	if err != nil {
		fmt.Fprintln(e.err, "chronoq-worker dev: dashboard:", err)
		return ExitFailure
	}
	defer stopDash()
	fmt.Fprintf(e.out, "chronoq dev: dashboard at %s\n", url)
	fmt.Fprintf(e.out, "chronoq dev: embedded Redis at redis://%s (other commands: --redis redis://%s)\n", m.Addr(), m.Addr())
	var names []string
	for _, q := range qs {
		names = append(names, q.Name)
	}
	fmt.Fprintf(e.out, "chronoq dev: worker %s on queues %s; beat entries %s; enqueueing demo jobs\n", w.ID(), strings.Join(names, ", "), demoBeatNames())

	failed := runDemo(runCtx, e, c)
	counts := map[string]queue.Counts{}
	for _, q := range []string{"ml", "data", "default"} {
		counts[q], _ = c.Counts(context.Background(), q)
	}
	fmt.Fprintf(e.out, "chronoq dev: demo done; default queue: %d succeeded, %d failed (on purpose: %d)\n",
		counts["default"].Succeeded, counts["default"].Failed, failed)
	if *exit {
		return ExitOK
	}
	fmt.Fprintln(e.out, "chronoq dev: worker keeps running; enqueue more with 'chronoq-worker enqueue demo.add --args '{\"a\":1,\"b\":2}' --redis redis://"+m.Addr()+"' — Ctrl-C stops")
	<-runCtx.Done()
	return ExitOK
}

// demoBeat is what the dev beat fires: something to watch on the beat page.
func demoBeat() []beat.Entry {
	return []beat.Entry{
		{Name: "demo-every-10s", Spec: "@every 10s", Task: DemoAdd.Name(), Args: mustArgs(AddArgs{A: 1, B: 1})},
		{Name: "demo-nightly", Spec: "0 2 * * *", TimeZone: "Europe/Berlin", Task: DemoSleep.Name(), Queue: "data", Args: mustArgs(SleepArgs{Ms: 100})},
	}
}

func demoBeatNames() string {
	var names []string
	for _, e := range demoBeat() {
		names = append(names, e.Name+" ("+e.Spec+")")
	}
	return strings.Join(names, ", ")
}

func mustArgs(v any) []byte {
	p, err := job.EncodeArgs(v)
	if err != nil {
		panic(err)
	}
	return p
}

// serveDevDashboard serves the dashboard on addr, or on any free loopback port when
// addr is taken (a second dev, say).
func serveDevDashboard(addr string, c *queue.Client, b *beat.Beat, reg prometheus.Gatherer, log *slog.Logger) (string, func(), error) {
	if err := checkBind(addr, "", "", ""); err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn("dashboard address taken; using another port", "addr", addr, "err", err)
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
	}
	srv := &http.Server{Handler: dashboard.New(c, dashboard.Config{Beat: b, Metrics: reg, Logger: log}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

func registerMissingDemo(w *worker.Worker) {
	have := map[string]bool{}
	for _, t := range w.Tasks() {
		have[t] = true
	}
	if !have[DemoAdd.Name()] && !have[DemoSleep.Name()] && !have[DemoFlaky.Name()] {
		RegisterDemo(w)
	}
}

// runDemo enqueues a mix of jobs and prints each one's outcome as it ends; it returns
// how many failed (one does on purpose).
func runDemo(ctx context.Context, e *env, c *queue.Client) int {
	type item struct {
		label string
		h     *queue.Handle
		err   error
	}
	var items []item
	addItem := func(label string, h *queue.Handle, err error) { items = append(items, item{label, h, err}) }
	var adds []AddArgs
	for i := 1; i <= 10; i++ {
		adds = append(adds, AddArgs{A: i, B: i * i})
	}
	hs, err := queue.EnqueueMany(ctx, c, DemoAdd, adds)
	for i, h := range hs {
		addItem(fmt.Sprintf("demo.add %d+%d", adds[i].A, adds[i].B), h, err)
	}
	for _, ms := range []int{300, 50, 150} {
		h, err := queue.Enqueue(ctx, c, DemoSleep, SleepArgs{Ms: ms}, job.Queue("data"))
		addItem(fmt.Sprintf("demo.sleep %dms on data", ms), h, err)
	}
	h, err := queue.Enqueue(ctx, c, DemoAdd, AddArgs{A: 7, B: 35}, job.Queue("ml"), job.Priority(9))
	addItem("demo.add 7+35 on ml, priority 9", h, err)
	h, err = queue.Enqueue(ctx, c, DemoFlaky, FlakyArgs{Succeed: 3})
	addItem("demo.flaky (fails twice, retried with backoff)", h, err)
	h, err = queue.Enqueue(ctx, c, DemoAdd, AddArgs{A: 1, B: 1}, job.In(time.Second))
	addItem("demo.add 1+1 delayed by 1s", h, err)
	h, err = c.EnqueueJSON(ctx, "demo.sleep", []byte(`{"ms": -1}`))
	addItem("demo.sleep -1ms (fails on purpose, no retry)", h, err)

	var mu sync.Mutex
	var wg sync.WaitGroup
	failed := 0
	start := time.Now()
	for _, it := range items {
		if it.err != nil {
			fmt.Fprintf(e.out, "  %-48s enqueue error: %v\n", it.label, it.err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			j, err := it.h.Wait(wctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				fmt.Fprintf(e.out, "  %-48s FAILED after %d attempt(s): %v\n", it.label, max(1, attempts(ctx, j, it.h)), err)
				return
			}
			var res any
			_ = j.DecodeResult(&res)
			fmt.Fprintf(e.out, "  %-48s -> %v  (attempt %d, at +%dms)\n", it.label, res, j.Attempt, time.Since(start).Milliseconds())
		}()
	}
	wg.Wait()
	return failed
}

func attempts(ctx context.Context, j *job.Job, h *queue.Handle) int {
	if j == nil {
		if jj, err := h.Job(ctx); err == nil {
			return jj.Attempt
		}
		return 0
	}
	return j.Attempt
}
