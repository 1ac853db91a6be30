package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) {
	if addr := os.Getenv("CHRONOQ_TEST_CHILD_WORKER"); addr != "" {
		childWorker(addr) // the process a test SIGKILLs
		return
	}
	redistest.Main(m)
}

type addArgs struct {
	A int `json:"a"`
	B int `json:"b"`
}

var (
	add   = job.NewTask[addArgs]("math.add")
	noop  = job.NewTask[struct{}]("noop")
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
)

type env struct {
	ctx context.Context
	c   *queue.Client
	rdb *redis.Client
}

func newEnv(t *testing.T, cfg queue.Config) *env {
	t.Helper()
	testutil.CheckLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	rdb := redistest.Client(t)
	cfg.Logger = quiet
	c := queue.NewClient(rdb, cfg)
	t.Cleanup(func() { _ = c.Close() })
	return &env{ctx: ctx, c: c, rdb: rdb}
}

// start makes a worker, lets register add its tasks, starts it and stops it at test end.
func start(t *testing.T, e *env, cfg worker.Config, register func(w *worker.Worker)) *worker.Worker {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	w, err := worker.New(e.c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	register(w)
	if err := w.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	return w
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitState(t *testing.T, e *env, h *queue.Handle, want job.State) *job.Job {
	t.Helper()
	var j *job.Job
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("job %s %s", h.ID, want), func() bool {
		var err error
		j, err = h.Job(e.ctx)
		return err == nil && j.State == want
	})
	return j
}

func TestResultsTypedAndByName(t *testing.T) {
	e := newEnv(t, queue.Config{})
	start(t, e, worker.Config{Concurrency: 4}, func(w *worker.Worker) {
		worker.HandleResult(w, add, func(ctx context.Context, a addArgs) (int, error) { return a.A + a.B, nil })
	})
	h, err := queue.Enqueue(e.ctx, e.c, add, addArgs{2, 3})
	must(t, err)
	if sum, err := queue.WaitResult[int](e.ctx, h); err != nil || sum != 5 {
		t.Fatalf("sum=%d err=%v", sum, err)
	}
	h2, err := e.c.EnqueueJSON(e.ctx, "math.add", []byte(`{"a": 40, "b": 2}`))
	must(t, err)
	if sum, err := queue.WaitResult[int](e.ctx, h2); err != nil || sum != 42 {
		t.Fatalf("by name: sum=%d err=%v", sum, err)
	}
	h3, err := e.c.EnqueueByName(e.ctx, "math.add", map[string]int{"a": 1, "b": 1})
	must(t, err)
	j, err := h3.Wait(e.ctx)
	must(t, err)
	if j.Attempt != 1 || j.StartedAt.IsZero() || j.FinishedAt.Before(j.StartedAt) {
		t.Fatalf("job record %+v", j)
	}
}

// A job's fair key reaches its handler and stays with its record, typed and by name.
func TestFairKeyTravelsWithTheJob(t *testing.T) {
	e := newEnv(t, queue.Config{})
	seen := make(chan string, 2)
	start(t, e, worker.Config{Concurrency: 2}, func(w *worker.Worker) {
		w.HandleFunc("math.add", func(ctx context.Context, j *job.Job) (any, error) {
			seen <- j.Options.FairKey
			return nil, nil
		})
	})
	h, err := queue.Enqueue(e.ctx, e.c, add, addArgs{1, 2}, job.FairKey("tenant-42"))
	must(t, err)
	h2, err := e.c.EnqueueByName(e.ctx, "math.add", map[string]int{"a": 1}, job.FairKey("bulk import"))
	must(t, err)
	got := map[string]bool{<-seen: true, <-seen: true}
	if !got["tenant-42"] || !got["bulk import"] {
		t.Fatalf("handlers saw fair keys %v", got)
	}
	for id, want := range map[*queue.Handle]string{h: "tenant-42", h2: "bulk import"} {
		j, err := id.Wait(e.ctx)
		must(t, err)
		if j.Options.FairKey != want {
			t.Errorf("job %s read back with fair key %q, want %q", j.ID, j.Options.FairKey, want)
		}
	}
	if _, err := queue.Enqueue(e.ctx, e.c, add, addArgs{}, job.FairKey("a\nb")); !errors.Is(err, job.ErrInvalidOption) {
		t.Errorf("a fair key with a newline: %v, want an error wrapping job.ErrInvalidOption", err)
	}
}

// A handler that ends its goroutine without returning (runtime.Goexit, as t.FailNow
// does) fails its attempt and frees its slot: the next job runs.
func TestHandlerExitingItsGoroutineFreesTheSlot(t *testing.T) {
	e := newEnv(t, queue.Config{})
	start(t, e, worker.Config{Concurrency: 1}, func(w *worker.Worker) {
		w.HandleFunc("exits", func(ctx context.Context, j *job.Job) (any, error) {
			runtime.Goexit()
			return nil, nil
		})
		w.HandleFunc("returns", func(ctx context.Context, j *job.Job) (any, error) { return 1, nil })
	})
	h, err := e.c.EnqueueByName(e.ctx, "exits", nil, job.MaxRetries(0))
	must(t, err)
	h2, err := e.c.EnqueueByName(e.ctx, "returns", nil)
	must(t, err)
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if j, err := h2.Wait(ctx); err != nil || j.State != job.StateSucceeded {
		t.Fatalf("the job after a handler that exited its goroutine: %v %v", j, err)
	}
	j, err := h.Wait(ctx)
	if !errors.Is(err, job.ErrJobFailed) || !strings.Contains(j.LastError, "exited its goroutine") {
		t.Fatalf("the exiting handler's job: %v, last error %q", err, j.LastError)
	}
}

func TestFailuresAreRecordedAndTheWorkerLives(t *testing.T) {
	e := newEnv(t, queue.Config{})
	var calls atomic.Int32
	abandoned := make(chan struct{}) // closed at test end, so the abandoned handler ends before the leak check
	t.Cleanup(func() { close(abandoned) })
	start(t, e, worker.Config{Concurrency: 2, HardDeadlineGrace: 50 * time.Millisecond}, func(w *worker.Worker) {
		w.HandleFunc("panics", func(ctx context.Context, j *job.Job) (any, error) { panic("kaboom") })
		w.HandleFunc("respects-timeout", func(ctx context.Context, j *job.Job) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})
		w.HandleFunc("ignores-timeout", func(ctx context.Context, j *job.Job) (any, error) {
			<-abandoned // does not return while the test runs: the worker must free the slot anyway
			return nil, nil
		})
		w.HandleFunc("skip", func(ctx context.Context, j *job.Job) (any, error) {
			calls.Add(1)
			return nil, job.SkipRetry(errors.New("permanent"))
		})
		worker.Handle(w, add, func(ctx context.Context, a addArgs) error { return nil })
		worker.Handle(w, noop, func(ctx context.Context, _ struct{}) error { return nil })
	})
	cases := []struct {
		task    string
		payload []byte
		opts    []job.Option
		want    error
		inError string
	}{
		{"panics", nil, []job.Option{job.MaxRetries(0)}, job.ErrPanic, "kaboom"},
		{"respects-timeout", nil, []job.Option{job.MaxRetries(0), job.Timeout(30 * time.Millisecond)}, job.ErrTimeout, "timeout of 30ms"},
		{"ignores-timeout", nil, []job.Option{job.MaxRetries(0), job.Timeout(30 * time.Millisecond)}, job.ErrTimeout, "abandoned"},
		{"not-registered", nil, []job.Option{job.MaxRetries(0)}, job.ErrUnknownTask, `"not-registered"`},
		{"math.add", []byte{0xa3, 'x', 'y', 'z'}, []job.Option{job.MaxRetries(5)}, job.ErrBadPayload, "undecodable"},
		{"skip", nil, []job.Option{job.MaxRetries(5)}, nil, "permanent"},
	}
	for _, tc := range cases {
		t.Run(tc.task, func(t *testing.T) {
			h, err := e.c.EnqueueRaw(e.ctx, tc.task, tc.payload, tc.opts...)
			must(t, err)
			_, err = h.Wait(e.ctx)
			var fe *job.FailedError
			if !errors.As(err, &fe) || !strings.Contains(fe.Message, tc.inError) {
				t.Fatalf("wait: %v, want a failure naming %q", err, tc.inError)
			}
			j, err := h.Job(e.ctx)
			must(t, err)
			if j.State != job.StateFailed || j.Attempt != 1 {
				t.Fatalf("state %s attempts %d (bad input gets no retries)", j.State, j.Attempt)
			}
			if tc.want == job.ErrPanic && !strings.Contains(j.Stack, "worker_test.go") {
				t.Fatalf("panic stack not recorded: %q", j.Stack)
			}
		})
	}
	if calls.Load() != 1 {
		t.Fatalf("SkipRetry job ran %d times", calls.Load())
	}
	// the worker still runs jobs, with both slots free again
	var hs []*queue.Handle
	for i := 0; i < 4; i++ {
		h, err := queue.Enqueue(e.ctx, e.c, noop, struct{}{})
		must(t, err)
		hs = append(hs, h)
	}
	for _, h := range hs {
		if _, err := h.Wait(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	// a failed job can be requeued once the cause is fixed (paused, so that this
	// worker does not fail them again while they are being counted)
	must(t, e.c.Pause(e.ctx, "default"))
	n, err := e.c.Requeue(e.ctx, "default")
	must(t, err)
	if n != len(cases) {
		t.Fatalf("requeued %d of %d failed jobs", n, len(cases))
	}
}

func TestBackoffScheduleWithInjectedClock(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC))
	e := newEnv(t, queue.Config{Now: clock.Now})
	var attempts atomic.Int32
	start(t, e, worker.Config{Random: func() float64 { return 0.5 }}, func(w *worker.Worker) {
		w.HandleFunc("flaky", func(ctx context.Context, j *job.Job) (any, error) {
			attempts.Add(1)
			if j.Attempt == 2 {
				return nil, job.RetryAfter(time.Minute, errors.New("busy, come back later"))
			}
			return nil, fmt.Errorf("failure %d", j.Attempt)
		})
	})
	b := job.Backoff{Base: 10 * time.Second, Factor: 3, Max: time.Hour, Jitter: 0.2}
	h, err := e.c.EnqueueByName(e.ctx, "flaky", nil, job.MaxRetries(3), job.WithBackoff(b))
	must(t, err)
	wantDelays := []time.Duration{
		9 * time.Second,  // 10s, less 0.2*0.5 jitter
		time.Minute,      // RetryAfter
		81 * time.Second, // 10s*3^2 = 90s, less 10%
	}
	for i, d := range wantDelays {
		j := waitState(t, e, h, job.StateScheduled)
		if got := j.DueAt.Sub(clock.Now()); got != d {
			t.Fatalf("retry %d: due in %s, want %s", i+1, got, d)
		}
		clock.Advance(d)
		// wake the promoters as a producer scheduling an earlier job would
		must(t, e.rdb.Publish(e.ctx, clientstore.Of(e.c).Keys("default").SchedChannel, "0").Err())
		testutil.Eventually(t, 10*time.Second, "next attempt ran", func() bool { return attempts.Load() == int32(i+2) })
	}
	j := waitState(t, e, h, job.StateFailed)
	if j.Attempt != 4 || j.LastError != "failure 4" {
		t.Fatalf("final: attempts %d error %q", j.Attempt, j.LastError)
	}
}

func TestGracefulShutdownFinishesOrHandsBack(t *testing.T) {
	e := newEnv(t, queue.Config{})
	release := make(chan struct{})
	var started atomic.Int32
	w := start(t, e, worker.Config{Concurrency: 2, ShutdownTimeout: 100 * time.Millisecond}, func(w *worker.Worker) {
		w.HandleFunc("quick", func(ctx context.Context, j *job.Job) (any, error) {
			started.Add(1)
			<-release
			return "ok", nil
		})
		w.HandleFunc("slow", func(ctx context.Context, j *job.Job) (any, error) {
			started.Add(1)
			<-ctx.Done() // only the end of the grace period stops it
			return nil, ctx.Err()
		})
	})
	quick, err := e.c.EnqueueByName(e.ctx, "quick", nil)
	must(t, err)
	slow, err := e.c.EnqueueByName(e.ctx, "slow", nil)
	must(t, err)
	testutil.Eventually(t, 5*time.Second, "both jobs running", func() bool { return started.Load() == 2 })
	stopped := make(chan error)
	go func() { stopped <- w.Stop(context.Background()) }()
	close(release) // quick finishes inside the grace period
	must(t, <-stopped)
	if j, err := quick.Job(e.ctx); err != nil || j.State != job.StateSucceeded {
		t.Fatalf("quick job: %+v %v", j, err)
	}
	j, err := slow.Job(e.ctx)
	must(t, err)
	if j.State != job.StatePending || j.Attempt != 0 {
		t.Fatalf("slow job must be pending again at once, without a spent attempt: %s attempts %d", j.State, j.Attempt)
	}
	ws, err := e.c.Workers(e.ctx)
	must(t, err)
	if len(ws) != 0 {
		t.Fatalf("stopped worker still registered: %+v", ws)
	}
}

func TestStrictQueueOrderAndPriorityBands(t *testing.T) {
	e := newEnv(t, queue.Config{})
	var mu sync.Mutex
	var order []string
	record := func(ctx context.Context, j *job.Job) (any, error) {
		mu.Lock()
		order = append(order, fmt.Sprintf("%s/%d", j.Options.Queue, j.Options.Priority))
		mu.Unlock()
		return nil, nil
	}
	var reqs []queue.Request
	for _, q := range []string{"low", "high"} {
		for _, p := range []int{0, 9, 5} {
			reqs = append(reqs, queue.Request{Task: "rec", Options: []job.Option{job.Queue(q), job.Priority(p)}})
		}
	}
	_, err := e.c.EnqueueBatch(e.ctx, reqs)
	must(t, err)
	start(t, e, worker.Config{Concurrency: 1, Strict: true, Queues: []worker.QueueConfig{{Name: "high"}, {Name: "low"}}},
		func(w *worker.Worker) { w.HandleFunc("rec", record) })
	testutil.Eventually(t, 10*time.Second, "all ran", func() bool { mu.Lock(); defer mu.Unlock(); return len(order) == 6 })
	want := "[high/9 high/5 high/0 low/9 low/5 low/0]"
	if fmt.Sprint(order) != want {
		t.Fatalf("order %v, want %s", order, want)
	}
}

func TestWeightedQueuesShareFetches(t *testing.T) {
	e := newEnv(t, queue.Config{})
	const each = 300
	var reqs []queue.Request
	for _, q := range []string{"ml", "data"} {
		for i := 0; i < each; i++ {
			reqs = append(reqs, queue.Request{Task: "rec", Options: []job.Option{job.Queue(q)}})
		}
	}
	_, err := e.c.EnqueueBatch(e.ctx, reqs)
	must(t, err)
	var mu sync.Mutex
	var seen []string
	start(t, e, worker.Config{Concurrency: 1, Queues: []worker.QueueConfig{{Name: "ml", Weight: 3}, {Name: "data", Weight: 1}}},
		func(w *worker.Worker) {
			w.HandleFunc("rec", func(ctx context.Context, j *job.Job) (any, error) {
				mu.Lock()
				seen = append(seen, j.Options.Queue)
				mu.Unlock()
				return nil, nil
			})
		})
	testutil.Eventually(t, 20*time.Second, "200 jobs ran", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) >= 200 })
	mu.Lock()
	ml := 0
	for _, q := range seen[:200] {
		if q == "ml" {
			ml++
		}
	}
	mu.Unlock()
	// weight 3:1 gives ml 75% of fetches; 200 draws put it within 60-90% with
	// overwhelming probability (the bounds are over 4 standard deviations)
	if ml < 120 || ml > 180 {
		t.Fatalf("ml took %d of the first 200 fetches, want about 150", ml)
	}
}

func TestConcurrencyBoundsAndHeartbeat(t *testing.T) {
	e := newEnv(t, queue.Config{})
	release := make(chan struct{})
	var running atomic.Int32
	var reqs []queue.Request
	for i := 0; i < 50; i++ {
		reqs = append(reqs, queue.Request{Task: "block"}, queue.Request{Task: "ml", Options: []job.Option{job.Queue("ml")}})
	}
	_, err := e.c.EnqueueBatch(e.ctx, reqs)
	must(t, err)
	// strict with ml first: ml is tried first but capped at 1, the rest goes to default
	w := start(t, e, worker.Config{Concurrency: 5, Strict: true, Queues: []worker.QueueConfig{{Name: "ml", Concurrency: 1}, {Name: "default"}},
		HeartbeatInterval: 50 * time.Millisecond}, func(w *worker.Worker) {
		w.HandleFunc("block", func(ctx context.Context, j *job.Job) (any, error) {
			running.Add(1)
			<-release
			return nil, nil
		})
		w.HandleFunc("ml", func(ctx context.Context, j *job.Job) (any, error) {
			running.Add(1)
			<-release
			return nil, nil
		})
	})
	t.Cleanup(func() { close(release) }) // runs before the worker's Stop
	testutil.Eventually(t, 5*time.Second, "5 running", func() bool { return running.Load() == 5 })
	// never more held than slots: the rest stays pending for other workers
	c1, err := e.c.Counts(e.ctx, "default")
	must(t, err)
	c2, err := e.c.Counts(e.ctx, "ml")
	must(t, err)
	if c1.Active != 4 || c2.Active != 1 {
		t.Fatalf("active: default %d ml %d; want 4 and 1", c1.Active, c2.Active)
	}
	testutil.Eventually(t, 5*time.Second, "heartbeat lists 5 running jobs", func() bool {
		ws, err := e.c.Workers(e.ctx)
		return err == nil && len(ws) == 1 && ws[0].ID == w.ID() && len(ws[0].Running) == 5 && ws[0].Concurrency == 5
	})
}

func TestMiddlewareWrapsInOrder(t *testing.T) {
	e := newEnv(t, queue.Config{})
	var mu sync.Mutex
	var trace []string
	mw := func(name string) worker.Middleware {
		return func(next worker.Handler) worker.Handler {
			return func(ctx context.Context, j *job.Job) (any, error) {
				mu.Lock()
				trace = append(trace, name+">")
				mu.Unlock()
				res, err := next(ctx, j)
				mu.Lock()
				trace = append(trace, "<"+name)
				mu.Unlock()
				return res, err
			}
		}
	}
	start(t, e, worker.Config{}, func(w *worker.Worker) {
		w.Use(mw("outer"), mw("inner"))
		w.HandleFunc("t", func(ctx context.Context, j *job.Job) (any, error) {
			if job.FromContext(ctx).ID != j.ID {
				return nil, errors.New("job missing from context")
			}
			mu.Lock()
			trace = append(trace, "task")
			mu.Unlock()
			return nil, nil
		})
	})
	h, err := e.c.EnqueueByName(e.ctx, "t", nil)
	must(t, err)
	_, err = h.Wait(e.ctx)
	must(t, err)
	if got := fmt.Sprint(trace); got != "[outer> inner> task <inner <outer]" {
		t.Fatal(got)
	}
}

func TestConfigErrors(t *testing.T) {
	e := newEnv(t, queue.Config{})
	cases := []worker.Config{
		{Concurrency: -1},
		{Queues: []worker.QueueConfig{{Name: "a"}, {Name: "a"}}},
		{Queues: []worker.QueueConfig{{Name: "bad name"}}},
		{Queues: []worker.QueueConfig{{Name: "a", Weight: -2}}},
		{Lease: time.Millisecond},
	}
	for i, cfg := range cases {
		if _, err := worker.New(e.c, cfg); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
	w, err := worker.New(e.c, worker.Config{Logger: quiet})
	must(t, err)
	if err := w.Start(e.ctx); err == nil {
		t.Error("a worker with no task must not start")
	}
}

// childWorker is a worker process for TestKilledWorkerJobRunsAgain: it marks that the
// job started, then blocks until it is killed.
func childWorker(addr string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	c := queue.NewClient(rdb, queue.Config{Logger: quiet})
	w, err := worker.New(c, worker.Config{Lease: 500 * time.Millisecond, Logger: quiet})
	if err != nil {
		panic(err)
	}
	w.HandleFunc("victim", func(ctx context.Context, j *job.Job) (any, error) {
		rdb.Set(ctx, "child-started", j.ID, 0)
		select {}
	})
	_ = w.Run(context.Background())
}

// startVictim starts a childWorker process and waits until it runs job id.
func startVictim(t *testing.T, e *env, id string) *exec.Cmd {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "CHRONOQ_TEST_CHILD_WORKER="+redistest.Addr())
	must(t, child.Start())
	testutil.Eventually(t, 10*time.Second, "child started the job", func() bool {
		got, _ := e.rdb.Get(e.ctx, "child-started").Result()
		return got == id
	})
	return child
}

func TestKilledWorkerJobRunsAgain(t *testing.T) {
	e := newEnv(t, queue.Config{})
	h, err := e.c.EnqueueByName(e.ctx, "victim", nil, job.MaxRetries(2))
	must(t, err)
	child := startVictim(t, e, h.ID)
	must(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
	ran := make(chan int, 1)
	start(t, e, worker.Config{Lease: 500 * time.Millisecond}, func(w *worker.Worker) {
		w.HandleFunc("victim", func(ctx context.Context, j *job.Job) (any, error) {
			ran <- j.Attempt
			return nil, nil
		})
	})
	select {
	case attempt := <-ran:
		if attempt != 2 {
			t.Fatalf("rerun is attempt %d, want 2", attempt)
		}
	case <-e.ctx.Done():
		t.Fatal("the killed worker's job never ran again")
	}
	j := waitState(t, e, h, job.StateSucceeded)
	if !strings.Contains(j.LastError, "lease expired") {
		t.Fatalf("last error %q", j.LastError)
	}
}

func TestRedisGoesAwayAndComesBack(t *testing.T) {
	// go-redis' dial prober (pool.(*ConnPool).tryDial), started while Redis was away,
	// sleeps 1 s between probes and sees its pool closed only when it wakes
	testutil.CheckLeaksWithin(t, 2*time.Second)
	srv, err := redistest.Start()
	must(t, err)
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	defer rdb.Close()
	c := queue.NewClient(rdb, queue.Config{Logger: quiet})
	defer c.Close()
	var ran atomic.Int32
	w, err := worker.New(c, worker.Config{Logger: quiet, IdleBlock: time.Second})
	must(t, err)
	w.HandleFunc("t", func(ctx context.Context, j *job.Job) (any, error) { ran.Add(1); return nil, nil })
	must(t, w.Start(ctx))
	defer w.Stop(context.Background())
	_, err = c.EnqueueByName(ctx, "t", nil)
	must(t, err)
	testutil.Eventually(t, 10*time.Second, "first job ran", func() bool { return ran.Load() == 1 })

	srv.Stop()
	if _, err := c.EnqueueByName(ctx, "t", nil); err == nil || !strings.Contains(err.Error(), "enqueue") {
		t.Fatalf("enqueue with Redis away: %v", err)
	}
	must(t, srv.Restart())
	testutil.Eventually(t, 10*time.Second, "enqueue works again", func() bool {
		_, err := c.EnqueueByName(ctx, "t", nil)
		return err == nil
	})
	testutil.Eventually(t, 15*time.Second, "worker resumed", func() bool { return ran.Load() >= 2 })
}

func TestCappedQueueWakesWhenItsSlotFrees(t *testing.T) {
	e := newEnv(t, queue.Config{})
	var ran atomic.Int32
	release := make(chan struct{})
	// IdleBlock is far beyond the test's deadline: only the freed slot can wake the
	// worker for the jobs its cap held back
	start(t, e, worker.Config{Concurrency: 5, IdleBlock: 30 * time.Second,
		Queues: []worker.QueueConfig{{Name: "ml", Concurrency: 1}}}, func(w *worker.Worker) {
		w.HandleFunc("train", func(ctx context.Context, j *job.Job) (any, error) {
			if ran.Add(1) == 1 {
				<-release
			}
			return nil, nil
		})
	})
	reqs := make([]queue.Request, 3)
	for i := range reqs {
		reqs[i] = queue.Request{Task: "train", Options: []job.Option{job.Queue("ml")}}
	}
	_, err := e.c.EnqueueBatch(e.ctx, reqs)
	must(t, err)
	testutil.Eventually(t, 10*time.Second, "first job running, worker blocked in BLPOP", func() bool {
		clients, _ := e.rdb.ClientList(e.ctx).Result()
		return ran.Load() == 1 && strings.Contains(clients, "flags=b ") && strings.Contains(clients, "cmd=blpop")
	})
	close(release)
	testutil.Eventually(t, 10*time.Second, "the held-back jobs ran", func() bool { return ran.Load() == 3 })
}

// waitIdleIn waits until worker id is registered idle on queue (ready for a hand-off).
func waitIdleIn(t *testing.T, e *env, queueName string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "worker idle on "+queueName, func() bool {
		n, _ := e.rdb.ZCard(e.ctx, clientstore.Of(e.c).Keys(queueName).Idle).Result()
		return n > 0
	})
}

func TestHandedOffJobKeepsItsLease(t *testing.T) {
	e := newEnv(t, queue.Config{})
	release := make(chan struct{})
	var runs atomic.Int32
	start(t, e, worker.Config{Lease: 300 * time.Millisecond}, func(w *worker.Worker) {
		w.HandleFunc("long", func(ctx context.Context, j *job.Job) (any, error) {
			runs.Add(1)
			<-release
			return nil, nil
		})
	})
	waitIdleIn(t, e, "default")
	h, err := e.c.EnqueueByName(e.ctx, "long", nil, job.MaxRetries(0))
	must(t, err)
	k := clientstore.Of(e.c).Keys("default")
	first, err := e.rdb.ZScore(e.ctx, k.Active, h.ID).Result()
	must(t, err)
	// the lease must be renewed past its first deadline while the job runs
	testutil.Eventually(t, 10*time.Second, "lease renewed", func() bool {
		s, err := e.rdb.ZScore(e.ctx, k.Active, h.ID).Result()
		return err == nil && s > first+300
	})
	close(release)
	j := waitState(t, e, h, job.StateSucceeded)
	if runs.Load() != 1 || j.Attempt != 1 {
		t.Fatalf("ran %d times, attempt %d", runs.Load(), j.Attempt)
	}
}

func TestHandOffRespectsQueueCap(t *testing.T) {
	e := newEnv(t, queue.Config{})
	release := make(chan struct{})
	var running atomic.Int32
	start(t, e, worker.Config{Concurrency: 4, Queues: []worker.QueueConfig{{Name: "ml", Concurrency: 1}, {Name: "default"}}},
		func(w *worker.Worker) {
			w.HandleFunc("train", func(ctx context.Context, j *job.Job) (any, error) {
				running.Add(1)
				<-release
				return nil, nil
			})
		})
	t.Cleanup(func() { close(release) })
	waitIdleIn(t, e, "ml")
	_, err := e.c.EnqueueByName(e.ctx, "train", nil, job.Queue("ml"))
	must(t, err)
	testutil.Eventually(t, 10*time.Second, "first ml job running, worker blocked again", func() bool {
		clients, _ := e.rdb.ClientList(e.ctx).Result()
		return running.Load() == 1 && strings.Contains(clients, "flags=b ")
	})
	// another worker's idle entry makes the next ml job a hand-off; the capped worker
	// must not be listening on ml's ready list. Redis serves a blocked BLPOP before it
	// answers the next command, so right after the enqueue the list shows who listened.
	k := clientstore.Of(e.c).Keys("ml")
	must(t, clientstore.Of(e.c).MarkIdle(e.ctx, []string{"ml"}, "other-worker", time.Now().Add(time.Minute), time.Minute))
	_, err = e.c.EnqueueByName(e.ctx, "train", nil, job.Queue("ml"))
	must(t, err)
	if n, _ := e.rdb.LLen(e.ctx, k.Ready).Result(); n != 1 || running.Load() != 1 {
		t.Fatalf("the hand-off was taken by the worker at its ml cap (ready %d, running %d)", n, running.Load())
	}
}

func TestRankingModeSwitchUnderLoad(t *testing.T) {
	e := newEnv(t, queue.Config{})
	must(t, e.c.SetPriors(e.ctx, "default", map[string]float64{"a": 1, "b": 5, "c": 20}))
	var mu sync.Mutex
	runs := map[string]int{}
	var done atomic.Int32
	start(t, e, worker.Config{Concurrency: 5}, func(w *worker.Worker) {
		for _, task := range []string{"a", "b", "c"} {
			w.HandleFunc(task, func(ctx context.Context, j *job.Job) (any, error) {
				mu.Lock()
				runs[j.ID]++
				mu.Unlock()
				done.Add(1)
				return nil, nil
			})
		}
	})
	const n = 600
	reqs := make([]queue.Request, n)
	for i := range reqs {
		reqs[i] = queue.Request{Task: []string{"a", "b", "c"}[i%3], Options: []job.Option{job.Cost("items", float64(i%7))}}
	}
	_, err := e.c.EnqueueBatch(e.ctx, reqs)
	must(t, err)
	modes := []ranking.Mode{ranking.ModeActive, ranking.ModeShadow, ranking.ModeFIFO, ranking.ModeActive}
	for i, m := range modes {
		testutil.Eventually(t, 10*time.Second, "progress", func() bool { return done.Load() >= int32((i+1)*n/(len(modes)+1)) })
		must(t, e.c.SetRankingMode(e.ctx, "default", m))
	}
	testutil.Eventually(t, 20*time.Second, "all ran", func() bool { return done.Load() >= n })
	mu.Lock()
	defer mu.Unlock()
	for id, k := range runs {
		if k != 1 {
			t.Fatalf("job %s ran %d times", id, k)
		}
	}
	if len(runs) != n {
		t.Fatalf("%d of %d jobs ran", len(runs), n)
	}
	st, err := e.c.RankingStats(e.ctx, "default")
	must(t, err)
	var learned int64
	for _, s := range st {
		if s.Task == "" { // the whole queue
			learned = s.Count
		}
	}
	if learned == 0 || learned >= n {
		t.Fatalf("learned from %d jobs; only those finished outside fifo mode count", learned)
	}
}

func TestSkipIfLateAfterAnOutage(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC))
	e := newEnv(t, queue.Config{Now: clock.Now})
	strict, err := e.c.EnqueueByName(e.ctx, "remind", nil, job.In(time.Hour), job.SkipIfLate(10*time.Minute))
	must(t, err)
	lenient, err := e.c.EnqueueByName(e.ctx, "remind", nil, job.In(time.Hour), job.SkipIfLate(3*time.Hour))
	must(t, err)
	always, err := e.c.EnqueueByName(e.ctx, "remind", nil, job.In(time.Hour))
	must(t, err)
	clock.Advance(3 * time.Hour) // every worker was down; now one comes back
	var ran atomic.Int32
	start(t, e, worker.Config{}, func(w *worker.Worker) {
		w.HandleFunc("remind", func(ctx context.Context, j *job.Job) (any, error) { ran.Add(1); return nil, nil })
	})
	j := waitState(t, e, strict, job.StateFailed)
	if !strings.Contains(j.LastError, "too late") || j.Attempt != 1 {
		t.Fatalf("strict: %q", j.LastError)
	}
	waitState(t, e, lenient, job.StateSucceeded)
	waitState(t, e, always, job.StateSucceeded)
	if ran.Load() != 2 {
		t.Fatalf("ran %d", ran.Load())
	}
}

func TestDowntimeCatchUpInDueOrder(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC))
	e := newEnv(t, queue.Config{Now: clock.Now})
	var want []string
	byOffset := map[int]string{}
	for _, k := range []int{4, 1, 6, 3, 5, 2} { // enqueued out of due order
		h, err := e.c.EnqueueByName(e.ctx, "tick", nil, job.In(time.Duration(k)*10*time.Minute))
		must(t, err)
		byOffset[k] = h.ID
	}
	for k := 1; k <= 6; k++ {
		want = append(want, byOffset[k])
	}
	clock.Advance(2 * time.Hour) // every worker was stopped; all six came due meanwhile
	var mu sync.Mutex
	var got []string
	start(t, e, worker.Config{Concurrency: 1}, func(w *worker.Worker) {
		w.HandleFunc("tick", func(ctx context.Context, j *job.Job) (any, error) {
			mu.Lock()
			got = append(got, j.ID)
			mu.Unlock()
			return nil, nil
		})
	})
	testutil.Eventually(t, 10*time.Second, "all ran", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 6 })
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order %v, want due order %v", got, want)
	}
}

// Nothing about a scheduled job lives in a worker: stop every worker, start new ones,
// and every job runs, once.
func TestRestartLosesNothing(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC))
	e := newEnv(t, queue.Config{Now: clock.Now})
	var mu sync.Mutex
	runs := map[string]int{}
	handler := func(ctx context.Context, j *job.Job) (any, error) {
		mu.Lock()
		runs[j.ID]++
		mu.Unlock()
		return nil, nil
	}
	first, err := worker.New(e.c, worker.Config{Logger: quiet})
	must(t, err)
	first.HandleFunc("later", handler)
	must(t, first.Start(e.ctx))
	const n = 30
	for i := 1; i <= n; i++ {
		_, err := e.c.EnqueueByName(e.ctx, "later", nil, job.In(time.Duration(i)*time.Minute), job.Key(fmt.Sprintf("k%d", i%7)))
		must(t, err)
	}
	must(t, first.Stop(context.Background())) // every process goes away
	clock.Advance(time.Hour)
	for r := 0; r < 2; r++ { // and comes back, twice over
		w := start(t, e, worker.Config{}, func(w *worker.Worker) { w.HandleFunc("later", handler) })
		if r == 0 {
			testutil.Eventually(t, 10*time.Second, "the due jobs ran", func() bool {
				c, _ := e.c.Counts(e.ctx, "default")
				return c.Scheduled == 0 && c.Pending == 0 && c.Active == 0
			})
		}
		must(t, w.Stop(context.Background()))
	}
	mu.Lock()
	defer mu.Unlock()
	// 30 jobs over 7 keys: a key's later schedule replaced its earlier one, 7 remain
	if len(runs) != 7 {
		t.Fatalf("%d jobs ran, want 7 (one per key)", len(runs))
	}
	for id, k := range runs {
		if k != 1 {
			t.Fatalf("job %s ran %d times", id, k)
		}
	}
}

// Lateness is judged per attempt: a retry that comes due during an outage is skipped
// too, and a job asked for at a time already past is late from that time.
func TestSkipIfLateRetriesAndPastTimes(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC))
	e := newEnv(t, queue.Config{Now: clock.Now})
	past, err := e.c.EnqueueByName(e.ctx, "remind", nil, job.At(clock.Now().Add(-5*time.Hour)), job.SkipIfLate(time.Hour))
	must(t, err)
	var attempts atomic.Int32
	w := start(t, e, worker.Config{}, func(w *worker.Worker) {
		w.HandleFunc("remind", func(ctx context.Context, j *job.Job) (any, error) { return nil, nil })
		w.HandleFunc("flaky", func(ctx context.Context, j *job.Job) (any, error) {
			attempts.Add(1)
			return nil, job.RetryAfter(time.Minute, errors.New("not now"))
		})
	})
	j := waitState(t, e, past, job.StateFailed)
	if !strings.Contains(j.LastError, "too late") {
		t.Fatalf("past At: %q", j.LastError)
	}
	retried, err := e.c.EnqueueByName(e.ctx, "flaky", nil, job.SkipIfLate(10*time.Minute), job.MaxRetries(3))
	must(t, err)
	testutil.Eventually(t, 10*time.Second, "first attempt", func() bool { return attempts.Load() == 1 })
	waitState(t, e, retried, job.StateScheduled)
	must(t, w.Stop(context.Background()))
	clock.Advance(5 * time.Hour) // an outage; the retry came due meanwhile
	start(t, e, worker.Config{}, func(w *worker.Worker) {
		w.HandleFunc("flaky", func(ctx context.Context, j *job.Job) (any, error) {
			attempts.Add(1)
			return nil, nil
		})
	})
	j = waitState(t, e, retried, job.StateFailed)
	if !strings.Contains(j.LastError, "too late") || attempts.Load() != 1 {
		t.Fatalf("late retry: %q, %d attempts ran", j.LastError, attempts.Load())
	}
}

// TestResultOverTheLimitFailsWithoutRetry: a result larger than Config.MaxResult fails
// its job at once, naming the size and the limit. Past Redis' proto-max-bulk-len the
// acknowledgement failed, and the job ran again until its retries were spent.
func TestResultOverTheLimitFailsWithoutRetry(t *testing.T) {
	e := newEnv(t, queue.Config{})
	var calls atomic.Int32
	start(t, e, worker.Config{Concurrency: 2, MaxResult: 1024}, func(w *worker.Worker) {
		w.HandleFunc("sized", func(ctx context.Context, j *job.Job) (any, error) {
			calls.Add(1)
			var n int
			must(t, j.Decode(&n))
			return strings.Repeat("x", n), nil
		})
	})
	cases := []struct {
		n    int // the result is n bytes of text: n+3 encoded (str 16), n+5 past 64 KiB (str 32)
		fail string
	}{
		{1021, ""},
		{1022, `result of task "sized" is 1025 bytes encoded, over the 1024 byte limit (worker.Config.MaxResult)`},
		{600 << 10, "is 614405 bytes encoded, over the 1024 byte limit"},
	}
	for _, tc := range cases {
		calls.Store(0)
		h, err := e.c.EnqueueByName(e.ctx, "sized", tc.n, job.MaxRetries(3))
		must(t, err)
		j, err := h.Wait(e.ctx)
		if tc.fail == "" {
			var s string
			if err != nil || j.DecodeResult(&s) != nil || len(s) != tc.n {
				t.Fatalf("%d bytes: %v, result of %d", tc.n, err, len(s))
			}
			continue
		}
		var fe *job.FailedError
		if !errors.As(err, &fe) || !strings.Contains(fe.Message, tc.fail) {
			t.Fatalf("%d bytes: %v, want a failure naming %q", tc.n, err, tc.fail)
		}
		if j, err = h.Job(e.ctx); err != nil || j.State != job.StateFailed || j.Attempt != 1 || calls.Load() != 1 {
			t.Fatalf("%d bytes: %v, state %s after %d attempts, %d runs (want failed at once)", tc.n, err, j.State, j.Attempt, calls.Load())
		}
	}
}
