package clusterfault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// Config shapes a run.
type Config struct {
	Every     time.Duration // between two jobs on the healthy queue (default 10ms)
	FaultFor  time.Duration // how long each fault lasts (default 3s)
	Lease     time.Duration // the worker's lease (default 6s, longer than a fault)
	Namespace string        // key prefix (default "chronoq")
	Logger    *slog.Logger  // progress; nil: none
}

// Fault names one fault of the run.
type Fault string

const (
	Paused Fault = "paused" // CLIENT PAUSE ... ALL on the faulty master
	Down   Fault = "down"   // the faulty master killed, then started again
)

// Result is what a run measured.
type Result struct {
	Healthy   []time.Duration // enqueue-to-start of each job on the healthy queue, sorted
	Recovered map[Fault]time.Duration
	// Problems are what went wrong that must not: a job on the healthy queue that ran
	// twice, failed, or never ran; a job on the faulty queue that ran twice or failed;
	// a warning the worker logged about the healthy queue.
	Problems []string
	// FaultyRan counts the faulty queue's jobs that ran; FaultyLost the ones enqueued
	// while its master was up that were gone after the master restarted empty.
	FaultyRan, FaultyLost int
	WorkerLog             string // the worker's warnings
	// Slow lists the healthy queue's jobs that started more than 10ms after their
	// enqueue: when each was enqueued (since the run began, and since the last fault
	// began) and how long it waited.
	Slow []string
}

// P returns the q-quantile (0..1) of the healthy queue's start latencies.
func (r Result) P(q float64) time.Duration {
	if len(r.Healthy) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(r.Healthy)))) - 1
	return r.Healthy[min(max(i, 0), len(r.Healthy)-1)]
}

// run is one job's record.
type run struct {
	queue    string
	enqueued time.Time // before the enqueue call
	starts   []time.Time
}

// Run forms its own 3-master cluster, serves a queue on one master ("healthy") and a
// queue on another ("faulty") with one worker, enqueues on both at a steady pace, and
// puts the faulty queue's master through each fault in turn. It measures when each
// healthy job started, and how soon after the faulty master's return a job of its
// queue started.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cl, err := redistest.StartCluster(3)
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
	defer rdb.Close()
	return RunOn(ctx, cfg, cl, rdb)
}

// RunOn is Run on a cluster the caller started (and rdb, a client of it). Every master
// must be up; the run leaves them up.
func RunOn(ctx context.Context, cfg Config, cl *redistest.Cluster, rdb *redis.ClusterClient) (Result, error) {
	if cfg.Every <= 0 {
		cfg.Every = 10 * time.Millisecond
	}
	if cfg.FaultFor <= 0 {
		cfg.FaultFor = 3 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 6 * time.Second
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "chronoq"
	}
	progress := cfg.Logger
	if progress == nil {
		progress = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return runOn(ctx, cfg, progress, cl, rdb)
}

func runOn(ctx context.Context, cfg Config, progress *slog.Logger, cl *redistest.Cluster, rdb *redis.ClusterClient) (res Result, err error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := queue.NewClient(rdb, queue.Config{Namespace: cfg.Namespace, Logger: quiet})
	defer c.Close()
	p, err := place(ctx, rdb, cl, clientstore.Of(c))
	if err != nil {
		return Result{}, err
	}
	progress.Info("placed", "healthy", p.healthy, "faulty", p.faulty, "faulty master", cl.Addrs[p.node], "worker", p.worker)

	var mu sync.Mutex
	runs := map[string]*run{}
	started := make(chan string, 1<<16) // ids of jobs as they start
	var logs testutil.LogBuffer
	w, err := worker.New(c, worker.Config{
		Queues:      []worker.QueueConfig{{Name: p.healthy}, {Name: p.faulty}},
		Concurrency: 8, Lease: cfg.Lease, IdleBlock: time.Second, ID: p.worker,
		HeartbeatInterval: time.Second, ShutdownTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return Result{}, err
	}
	w.HandleFunc("mark", func(ctx context.Context, j *job.Job) (any, error) {
		now := time.Now()
		mu.Lock()
		r := runs[j.ID]
		if r == nil { // started before its enqueue call returned
			r = &run{queue: j.Options.Queue}
			runs[j.ID] = r
		}
		r.starts = append(r.starts, now)
		mu.Unlock()
		select {
		case started <- j.ID:
		default:
		}
		return nil, nil
	})
	if err := w.Start(ctx); err != nil {
		return Result{}, err
	}
	defer func() { _ = w.Stop(context.Background()) }()

	// producers: one per queue, each at its own pace; a failed enqueue (the faulty
	// master away) is not a job
	enqueue := func(ctx context.Context, q string) (string, error) {
		at := time.Now()
		h, err := c.EnqueueByName(ctx, "mark", nil, job.Queue(q))
		if err != nil {
			return "", err
		}
		mu.Lock()
		if r := runs[h.ID]; r != nil {
			r.enqueued = at
		} else {
			runs[h.ID] = &run{queue: q, enqueued: at}
		}
		mu.Unlock()
		return h.ID, nil
	}
	prodCtx, stopProducers := context.WithCancel(ctx)
	var producers sync.WaitGroup
	var enqueueErrs sync.Map // queue -> last error
	produce := func(q string, every time.Duration) {
		defer producers.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-prodCtx.Done():
				return
			case <-t.C:
			}
			ectx, cancel := context.WithTimeout(prodCtx, 10*time.Second)
			if _, err := enqueue(ectx, q); err != nil && prodCtx.Err() == nil {
				enqueueErrs.Store(q, err)
			}
			cancel()
		}
	}
	producers.Add(2)
	go produce(p.healthy, cfg.Every)
	go produce(p.faulty, 5*cfg.Every)

	res.Recovered = map[Fault]time.Duration{}
	defer func() { res.WorkerLog = logs.String() }() // on failures too
	begun := time.Now()
	var faults []time.Time   // when each fault began
	settle := func() error { // both queues serve: a fresh job on each starts
		for _, q := range []string{p.healthy, p.faulty} {
			if _, err := firstStartAfter(ctx, &mu, runs, started, q, time.Now(), 10*time.Second); err != nil {
				return fmt.Errorf("before the faults: %w", err)
			}
		}
		return nil
	}
	if err := settle(); err != nil {
		stopProducers()
		return res, err
	}

	// fault 1: the master holds every command for FaultFor
	progress.Info("pausing the faulty master", "for", cfg.FaultFor)
	if err := cl.Pause(ctx, p.node, cfg.FaultFor); err != nil {
		stopProducers()
		return res, fmt.Errorf("pause: %w", err)
	}
	faults = append(faults, time.Now())
	back := time.Now().Add(cfg.FaultFor)
	sleep(ctx, time.Until(back))
	d, err := firstStartAfter(ctx, &mu, runs, started, p.faulty, back, 10*time.Second)
	if err != nil {
		stopProducers()
		return res, fmt.Errorf("after the pause: %w", err)
	}
	res.Recovered[Paused] = d
	progress.Info("faulty queue served again after the pause", "in", d)
	sleep(ctx, time.Second)

	// fault 2: the master killed, then started again (empty)
	progress.Info("killing the faulty master", "for", cfg.FaultFor)
	mu.Lock()
	var before []string // the faulty queue's jobs not yet run when its master went
	for id, r := range runs {
		if r.queue == p.faulty && len(r.starts) == 0 {
			before = append(before, id)
		}
	}
	mu.Unlock()
	faults = append(faults, time.Now())
	cl.Kill(p.node)
	sleep(ctx, cfg.FaultFor)
	if err := cl.Restart(p.node, 30*time.Second); err != nil {
		stopProducers()
		return res, fmt.Errorf("restart: %w", err)
	}
	back = time.Now()
	d, err = firstStartAfter(ctx, &mu, runs, started, p.faulty, back, 10*time.Second)
	if err != nil {
		stopProducers()
		return res, fmt.Errorf("after the restart: %w", err)
	}
	res.Recovered[Down] = d
	progress.Info("faulty queue served again after the restart", "in", d)
	sleep(ctx, time.Second)
	stopProducers()
	producers.Wait()

	// every job that was enqueued runs; then nothing more may start
	deadline := time.Now().Add(2*cfg.Lease + 10*time.Second)
	lost := map[string]bool{}
	for {
		mu.Lock()
		waiting := 0
		for id, r := range runs {
			if len(r.starts) == 0 && !lost[id] {
				waiting++
			}
		}
		mu.Unlock()
		if waiting == 0 || time.Now().After(deadline) {
			break
		}
		// a faulty job enqueued before the kill and not run is gone with the master's data
		for _, id := range before {
			mu.Lock()
			ran := len(runs[id].starts) > 0
			mu.Unlock()
			if !ran && !lost[id] {
				if j, err := c.Job(ctx, p.faulty, id); errors.Is(err, job.ErrNotFound) || (err == nil && j == nil) {
					lost[id] = true
				}
			}
		}
		sleep(ctx, 50*time.Millisecond) // another process's work: polled
	}
	if err := w.Stop(ctx); err != nil {
		return res, err
	}

	mu.Lock()
	defer mu.Unlock()
	for id, r := range runs {
		switch {
		case len(r.starts) == 0 && lost[id]:
			res.FaultyLost++
		case len(r.starts) == 0:
			res.Problems = append(res.Problems, fmt.Sprintf("job %s on %s never ran", id, r.queue))
		case len(r.starts) > 1:
			res.Problems = append(res.Problems, fmt.Sprintf("job %s on %s ran %d times", id, r.queue, len(r.starts)))
		}
		if len(r.starts) > 0 && r.queue == p.faulty {
			res.FaultyRan++
		}
		if r.queue == p.healthy && len(r.starts) > 0 && !r.enqueued.IsZero() {
			d := r.starts[0].Sub(r.enqueued)
			res.Healthy = append(res.Healthy, d)
			if d > 10*time.Millisecond {
				since := "before the faults"
				for i, f := range faults {
					if !r.enqueued.Before(f) {
						since = fmt.Sprintf("%s after fault %d began", r.enqueued.Sub(f).Round(time.Millisecond), i+1)
					}
				}
				res.Slow = append(res.Slow, fmt.Sprintf("enqueued %s into the run (%s), started %s later",
					r.enqueued.Sub(begun).Round(time.Millisecond), since, d.Round(time.Millisecond)))
			}
		}
	}
	slices.Sort(res.Healthy)
	// no job may have ended failed: the healthy queue's least of all
	for _, q := range []string{p.healthy, p.faulty} {
		n, err := c.Counts(ctx, q)
		if err != nil {
			res.Problems = append(res.Problems, fmt.Sprintf("counts of %s: %v", q, err))
			continue
		}
		if n.Failed > 0 {
			res.Problems = append(res.Problems, fmt.Sprintf("%d jobs of %s failed", n.Failed, q))
		}
	}
	if v, ok := enqueueErrs.Load(p.healthy); ok {
		res.Problems = append(res.Problems, fmt.Sprintf("an enqueue on the healthy queue failed: %v", v))
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "queue="+p.healthy+" ") || strings.HasSuffix(line, "queue="+p.healthy) {
			res.Problems = append(res.Problems, "the worker warned about the healthy queue: "+line)
		}
	}
	return res, nil
}

// placement is where the run's queues and worker live.
type placement struct {
	healthy, faulty string
	node            int // the faulty queue's master, in cl.Addrs
	worker          string
}

// place picks a healthy queue and a faulty one on two masters, so that the keys every
// producer and the worker also need (declared task options, the worker's heartbeat and
// poke list) are not on the faulty one: the run breaks the faulty queue's master
// alone.
func place(ctx context.Context, rdb *redis.ClusterClient, cl *redistest.Cluster, s *store.Store) (placement, error) {
	master := func(key string) (string, error) {
		m, err := rdb.MasterForKey(ctx, key)
		if err != nil {
			return "", err
		}
		return m.Options().Addr, nil
	}
	avoid := map[string]bool{}
	for _, k := range s.GlobalKeys() {
		a, err := master(k)
		if err != nil {
			return placement{}, err
		}
		avoid[a] = true
	}
	var p placement
	p.node = -1
	for i, a := range cl.Addrs {
		if !avoid[a] {
			p.node = i
			break
		}
	}
	if p.node < 0 {
		return p, errors.New("clusterfault: every master holds a global key")
	}
	faultyAddr := cl.Addrs[p.node]
	for i := 0; i < 1000 && (p.healthy == "" || p.faulty == ""); i++ {
		q := "q" + strconv.Itoa(i)
		a, err := master(s.Keys(q).Records)
		if err != nil {
			return p, err
		}
		if a == faultyAddr && p.faulty == "" {
			p.faulty = q
		} else if a != faultyAddr && p.healthy == "" {
			p.healthy = q
		}
	}
	for i := 0; i < 1000 && p.worker == ""; i++ {
		id := "fault-w" + strconv.Itoa(i)
		ok := true
		for _, k := range s.WorkerKeys(id) {
			a, err := master(k)
			if err != nil {
				return p, err
			}
			ok = ok && a != faultyAddr
		}
		if ok {
			p.worker = id
		}
	}
	if p.healthy == "" || p.faulty == "" || p.worker == "" {
		return p, errors.New("clusterfault: no placement found")
	}
	return p, nil
}

// firstStartAfter waits until a job of queue starts at or after from, and returns how
// long after from it started.
func firstStartAfter(ctx context.Context, mu *sync.Mutex, runs map[string]*run, started <-chan string, queue string, from time.Time, limit time.Duration) (time.Duration, error) {
	check := func() (time.Duration, bool) {
		mu.Lock()
		defer mu.Unlock()
		best := time.Duration(-1)
		for _, r := range runs {
			if r.queue != queue {
				continue
			}
			for _, s := range r.starts {
				if !s.Before(from) && (best < 0 || s.Sub(from) < best) {
					best = s.Sub(from)
				}
			}
		}
		return best, best >= 0
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		if d, ok := check(); ok {
			return d, nil
		}
		select {
		case <-started:
		case <-t.C:
			return 0, fmt.Errorf("no job of %s started within %s", queue, limit)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
