package stress

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const (
	nWorkers = 3
	minStall = 150 * time.Millisecond
	maxStall = 800 * time.Millisecond
	// waitSlack is how late a Wait with a deadline may return: a command in flight
	// when Redis stalls waits for the stall's end (go-redis keeps its own read
	// timeout, not the context's), plus scheduling under -race.
	waitSlack = maxStall + time.Second
	// toldSlack is how long, past one lease and the longest stall, a run may go on
	// after its job started again elsewhere (or was stopped) before its context must
	// have been canceled: a renewal every third of a lease finds the lease lost.
	toldSlack = maxStall + time.Second
	// capSlack is how long two runs may seem to share a slot: a run's end is seen a
	// little after the worker frees its slot.
	capSlack = 100 * time.Millisecond
	// backlogCap: producers hold back while this many jobs wait, so the drain is short.
	backlogCap = 150
)

var (
	queues = []string{"sq0", "sq1", "sq2"}
	tasks  = []string{"ta", "tb", "tc"}
)

// TestStress runs the randomized workload for STRESS_DUR, drains the queues, stops
// every worker and checks (during the run where cheap, at the end always):
//
//   - every job is in exactly one state: its own state, the per-state listings paged
//     through every offset, and the counts agree; nothing is pending, scheduled or
//     active once drained; a job is gone only if it was deleted or replaced under its
//     key; canceled only if it was canceled or stopped; deleted jobs are gone; during
//     the run, the counts never hold more jobs than were enqueued (less those deleted)
//     and a succeeded job's result names a run of it that returned it;
//   - two runs of one job overlap only if the first lost its lease (or was abandoned,
//     stopped or handed back): its context is then canceled within a lease and the
//     longest stall, and its outcome refused: a succeeded job's result names its
//     latest run, one that returned nil, was not abandoned and did not lose its
//     lease; a failed job's error names its latest run;
//   - no run starts after its job was canceled or deleted, after its worker's Stop
//     returned, or (by lease start) while its queue is paused; a stopped job runs at
//     most once more (a hand-off already under way) and a stop reaches its run;
//   - every Handle.Wait with a deadline returns by it (plus waitSlack), and what it
//     reported agrees with the job's end;
//   - no worker runs more jobs of a queue than its cap, nor more than its concurrency;
//   - no goroutine is left once every worker has stopped and every client is closed,
//     and (under -race) no data race.
//
// A violation of a known defect (knownDefects) is counted in the report, not failed.
func TestStress(t *testing.T) {
	cfg := stressConfig(t)
	t.Logf("seed %d, duration %s, stalls %v (replay: STRESS_SEED=%d STRESS_DUR=%s)", cfg.seed, cfg.dur, cfg.stalls, cfg.seed, cfg.dur)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay: STRESS_SEED=%d STRESS_DUR=%s go test -race -run TestStress -v ./internal/stress/", cfg.seed, cfg.dur)
		}
	})
	s := newSuite(t, cfg)
	began := time.Now()
	s.chaos()
	chaosEnd := time.Now()
	s.drain()
	s.stopAll()
	if !s.until(30*time.Second, func() bool { return s.inflight.Load() == 0 }) {
		s.violate("%d handlers still running 30s after every worker stopped", s.inflight.Load())
	}
	s.finalChecks()
	s.report(chaosEnd.Sub(began), time.Since(began))
	s.closeAll()
	if err := goleak.Find(); err != nil {
		s.violate("goroutines left after every worker stopped and every client closed: %v", err)
	}
	s.fail()
}

type config struct {
	seed   uint64
	dur    time.Duration
	stalls bool
}

func stressConfig(t *testing.T) config {
	c := config{dur: 15 * time.Second, stalls: true}
	if v := os.Getenv("STRESS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("STRESS_SEED=%q: %v", v, err)
		}
		c.seed = n
	} else {
		var b [8]byte
		_, _ = crand.Read(b[:])
		c.seed = binary.LittleEndian.Uint64(b[:]) >> 1
	}
	if v := os.Getenv("STRESS_DUR"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("STRESS_DUR=%q: want a positive Go duration such as 20s or 10m", v)
		}
		c.dur = d
	}
	if v := os.Getenv("STRESS_STALLS"); v == "0" || v == "off" || v == "false" {
		c.stalls = false
	}
	return c
}

// jobRec is what the test knows of one job.
type jobRec struct {
	id, queue, task string
	key             string // its schedule key ("": none)
	plan            plan
	known           bool // a producer's enqueue returned it
	maybeReplaced   bool // another enqueue under its key returned another job
	canceledAt      time.Time
	stopAsked       time.Time // the first StopJob call on it began
	stoppedAt       time.Time // StopJob found it running
	deletedAt       time.Time
	requeuedAt      time.Time // last Requeue naming it (or of its whole queue) began
	waits           []waitVerdict
}

type waitVerdict struct {
	at  time.Time
	how byte // 's' succeeded, 'c' canceled, 'f' failed, 'n' not found, 't' deadline
}

type workerRec struct {
	id                  string
	lease, grace        time.Duration
	concurrency         int
	caps                map[string]int
	w                   *worker.Worker
	rdb                 *redis.Client
	c                   *queue.Client
	stopCalled, stopped time.Time
}

type pauseWindow struct {
	queue         string
	paused, until time.Time // Pause returned, Resume was called
}

type suite struct {
	t    *testing.T
	cfg  config
	ctx  context.Context
	rdb  *redis.Client
	c    *queue.Client
	logs *tally

	inflight atomic.Int64 // handlers running
	backlog  atomic.Int64 // pending + scheduled, as the checker last counted
	enqBegun atomic.Int64 // jobs asked for (an upper bound of jobs made)
	deleted  atomic.Int64

	vmu        sync.Mutex // violations only: they are added with mu held too
	violations []string
	tolerated  map[string]int // known defects met, by name

	keyMu sync.Mutex // held by a keyed enqueue, from its call until its jobs are recorded

	mu         sync.Mutex
	jobs       map[string]*jobRec
	order      []*jobRec
	keyed      map[string][]string // queue|key -> ids its enqueues returned
	runs       map[string]*runRec
	runsOf     map[string][]*runRec
	nruns      int
	stepCount  [nKinds]int
	workers    [nWorkers]*workerRec
	allWorkers []*workerRec
	pauses     []pauseWindow
	requeueAll map[string]time.Time // queue -> last Requeue of all its failed jobs began
	deletedIn  map[string]int
	ops        map[string]int
}

func newSuite(t *testing.T, cfg config) *suite {
	rdb := redistest.Client(t)
	logs := &tally{counts: map[string]int{}}
	s := &suite{t: t, cfg: cfg, ctx: context.Background(), rdb: rdb, logs: logs,
		c:    queue.NewClient(rdb, queue.Config{Logger: slog.New(logs)}),
		jobs: map[string]*jobRec{}, keyed: map[string][]string{}, runs: map[string]*runRec{}, runsOf: map[string][]*runRec{},
		requeueAll: map[string]time.Time{}, deletedIn: map[string]int{}, ops: map[string]int{}, tolerated: map[string]int{}}
	for _, q := range queues {
		if err := s.c.DeclareQueue(s.ctx, q); err != nil {
			t.Fatalf("seed %d: declare %s: %v", cfg.seed, q, err)
		}
	}
	rng := s.rng(100)
	for i := range nWorkers {
		s.workers[i] = s.startWorker(i, 0, rng)
	}
	return s
}

// rng is the random source of one goroutine, drawn from the seed and its stream.
func (s *suite) rng(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(s.cfg.seed, stream*0x9e3779b97f4a7c15+1))
}

func (s *suite) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.vmu.Lock()
	s.violations = append(s.violations, msg)
	s.vmu.Unlock()
}

// knownDefects are defects of chronoq this test found, tolerated until they are fixed:
// what one of them would have flagged is counted in the report instead. Once a defect
// is fixed, delete its entry and the test checks the property again.
var knownDefects = map[string]string{}

// violateUnless is violate, unless the violation is the known defect named.
func (s *suite) violateUnless(defect, format string, args ...any) {
	if _, ok := knownDefects[defect]; ok {
		s.vmu.Lock()
		s.tolerated[defect]++
		s.vmu.Unlock()
		return
	}
	s.violate(format, args...)
}

func (s *suite) count(op string, n int) {
	s.mu.Lock()
	s.ops[op] += n
	s.mu.Unlock()
}

// shape matches what varies between two violations of one kind.
var shape = regexp.MustCompile(`[0-9a-z]{16}(#[0-9]+)?|[0-9]+(\.[0-9]+)?(µs|ms|s|m|h)?|&\{.*| \(key ".*`)

// fail reports the violations, each naming the seed.
func (s *suite) fail() {
	s.t.Helper()
	s.vmu.Lock()
	v := append([]string(nil), s.violations...)
	s.vmu.Unlock()
	if len(v) > 1 { // what kinds, first: job ids, run numbers and figures taken out
		kinds := map[string]int{}
		for _, msg := range v {
			kinds[shape.ReplaceAllString(msg, "_")]++
		}
		var b strings.Builder
		for _, k := range sortedKeys(kinds) {
			fmt.Fprintf(&b, "\n  %5d × %s", kinds[k], k)
		}
		s.t.Errorf("seed %d: %d violations of %d kinds:%s", s.cfg.seed, len(v), len(kinds), b.String())
	}
	for i, msg := range v {
		if i == 40 {
			s.t.Errorf("seed %d: ... and %d more violations", s.cfg.seed, len(v)-i)
			break
		}
		s.t.Errorf("seed %d: %s", s.cfg.seed, msg)
	}
}

// startWorker starts a worker on every queue with settings drawn from rng: a lease of
// 300–800 ms, a grace, a concurrency, caps on some queues, weights or strict order.
func (s *suite) startWorker(slot, gen int, rng *rand.Rand) *workerRec {
	wr := &workerRec{id: fmt.Sprintf("w%d.%d", slot, gen),
		lease:       time.Duration(300+rng.IntN(501)) * time.Millisecond,
		grace:       time.Duration(100+rng.IntN(201)) * time.Millisecond,
		concurrency: 3 + rng.IntN(6), caps: map[string]int{}}
	var qs []worker.QueueConfig
	for _, i := range rng.Perm(len(queues)) {
		qc := worker.QueueConfig{Name: queues[i], Weight: 1 + rng.IntN(4)}
		if rng.IntN(2) == 0 {
			qc.Concurrency = 1 + rng.IntN(3)
			wr.caps[qc.Name] = qc.Concurrency
		}
		qs = append(qs, qc)
	}
	var rmu sync.Mutex
	jitter := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	cfg := worker.Config{Queues: qs, Strict: rng.IntN(4) == 0, Concurrency: wr.concurrency,
		BatchSize: 1 + rng.IntN(wr.concurrency), Lease: wr.lease, HardDeadlineGrace: wr.grace,
		ShutdownTimeout: time.Duration(100+rng.IntN(900)) * time.Millisecond, IdleBlock: time.Second,
		ID: wr.id, Logger: slog.New(s.logs).With("worker", wr.id),
		Random: func() float64 { rmu.Lock(); defer rmu.Unlock(); return jitter.Float64() }}
	wr.rdb = redis.NewClient(&redis.Options{Addr: redistest.Addr()})
	wr.c = queue.NewClient(wr.rdb, queue.Config{Logger: slog.New(s.logs)})
	w, err := worker.New(wr.c, cfg)
	if err != nil {
		s.t.Fatalf("seed %d: worker %s: %v", s.cfg.seed, wr.id, err)
	}
	for _, task := range tasks {
		w.HandleFunc(task, s.handler(wr))
	}
	if err := w.Start(s.ctx); err != nil {
		s.t.Fatalf("seed %d: start worker %s: %v", s.cfg.seed, wr.id, err)
	}
	wr.w = w
	s.mu.Lock()
	s.allWorkers = append(s.allWorkers, wr)
	s.mu.Unlock()
	return wr
}

// stopWorker stops a worker and closes its clients.
func (s *suite) stopWorker(wr *workerRec) {
	s.mu.Lock()
	wr.stopCalled = time.Now()
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	if err := wr.w.Stop(ctx); err != nil {
		s.violate("worker %s: Stop: %v", wr.id, err)
	}
	s.mu.Lock()
	wr.stopped = time.Now()
	s.mu.Unlock()
	_ = wr.c.Close()
	_ = wr.rdb.Close()
}

// chaos runs producers, the operator, the pauser, the staller, the worker replacer and
// the checker until the duration is over, and waits for them (and the waiters).
func (s *suite) chaos() {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.dur)
	defer cancel()
	var wg sync.WaitGroup
	var waiters sync.WaitGroup
	loops := []func(context.Context, *rand.Rand){
		s.produce, s.produce, s.checker, s.pauser, s.replacer,
		func(ctx context.Context, rng *rand.Rand) { s.operate(ctx, rng, &waiters) },
	}
	if s.cfg.stalls {
		loops = append(loops, s.staller)
	}
	for i, loop := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx, s.rng(uint64(i+1)))
		}()
	}
	wg.Wait()
	waiters.Wait() // each has a deadline
}

// pace pauses between random operations (pacing, not synchronisation); it reports
// whether the phase goes on.
func pace(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func ms(rng *rand.Rand, lo, hi int) time.Duration {
	return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Millisecond
}

// produce enqueues single, bulk, delayed and keyed jobs.
func (s *suite) produce(ctx context.Context, rng *rand.Rand) {
	for pace(ctx, ms(rng, 5, 60)) {
		if s.backlog.Load() > backlogCap {
			continue
		}
		var reqs []queue.Request
		var plans []plan
		op := ""
		switch r := rng.IntN(100); {
		case r < 45:
			op = "enqueue single"
			reqs, plans = s.requests(rng, 1, 0)
		case r < 60:
			op = "enqueue batch"
			reqs, plans = s.requests(rng, 2+rng.IntN(40), 10)
		case r < 78:
			op = "enqueue delayed"
			req, p := s.request(rng)
			if rng.IntN(2) == 0 {
				req.Options = append(req.Options, job.In(ms(rng, 20, 2000)))
			} else {
				req.Options = append(req.Options, job.At(time.Now().Add(ms(rng, 0, 2500)-300*time.Millisecond)))
			}
			reqs, plans = []queue.Request{req}, []plan{p}
		default:
			op = "enqueue keyed"
			n := 1
			if rng.IntN(4) == 0 {
				n = 2 + rng.IntN(5) // keyed jobs in a batch
			}
			for range n {
				req, p := s.request(rng)
				req.Options = append(req.Options, job.Key(fmt.Sprintf("key%d", rng.IntN(15))))
				if rng.IntN(3) > 0 {
					req.Options = append(req.Options, job.In(ms(rng, 50, 1500)))
				}
				if rng.IntN(3) == 0 {
					req.Options = append(req.Options, job.KeepExisting())
				}
				reqs, plans = append(reqs, req), append(plans, p)
			}
		}
		s.enqBegun.Add(int64(len(reqs)))
		if !s.enqueue(op, reqs, plans) {
			return
		}
	}
}

// enqueue enqueues reqs and records their jobs. Keyed enqueues are made one at a time
// (s.keyMu), so that the test learns of them in the order Redis applied them: the job
// a later enqueue under the same key returned replaced the earlier ones.
func (s *suite) enqueue(op string, reqs []queue.Request, plans []plan) bool {
	for _, r := range reqs {
		if o, _ := job.DefaultOptions().Apply(r.Options...); o.Key != "" {
			s.keyMu.Lock()
			defer s.keyMu.Unlock()
			break
		}
	}
	// operations run on a context of their own: one cut short at the end of the phase
	// might take effect without the test learning of it
	hs, err := s.c.EnqueueBatch(s.ctx, reqs)
	if err != nil {
		s.violate("%s: %v", op, err)
		return false
	}
	s.count(op, 1)
	s.count("jobs asked for", len(reqs))
	s.registerJobs(hs, reqs, plans)
	return true
}

// requests draws n requests; pDelayed percent of them are delayed.
func (s *suite) requests(rng *rand.Rand, n, pDelayed int) ([]queue.Request, []plan) {
	reqs, plans := make([]queue.Request, n), make([]plan, n)
	for i := range reqs {
		reqs[i], plans[i] = s.request(rng)
		if rng.IntN(100) < pDelayed {
			reqs[i].Options = append(reqs[i].Options, job.In(ms(rng, 20, 1500)))
		}
	}
	return reqs, plans
}

// request draws one job: queue, task, priority, retries, a short timeout when its
// plan overruns, a constant backoff, a long retention, sometimes an estimate.
func (s *suite) request(rng *rand.Rand) (queue.Request, plan) {
	p := newPlan(rng)
	payload, err := job.EncodeArgs(p)
	if err != nil {
		s.t.Fatalf("seed %d: encode plan: %v", s.cfg.seed, err)
	}
	opts := []job.Option{job.Queue(queues[rng.IntN(len(queues))]), job.MaxRetries(rng.IntN(4)), job.Timeout(p.timeout(rng)),
		job.WithBackoff(job.ConstantBackoff(ms(rng, 20, 300))), job.Retention(2 * time.Hour)}
	if rng.IntN(2) == 0 {
		opts = append(opts, job.Priority(rng.IntN(job.MaxPriority+1)))
	}
	if rng.IntN(10) == 0 {
		opts = append(opts, job.Estimate(ms(rng, 1, 3000)))
	}
	return queue.Request{Task: tasks[rng.IntN(len(tasks))], Payload: payload, Options: opts}, p
}

// jobFor returns the record of id, making it if need be (a run or an operation may
// meet a job before its producer has recorded it). Call with s.mu held.
func (s *suite) jobFor(id, q string) *jobRec {
	r := s.jobs[id]
	if r == nil {
		r = &jobRec{id: id, queue: q}
		s.jobs[id] = r
		s.order = append(s.order, r)
	}
	return r
}

func (s *suite) registerJobs(hs []*queue.Handle, reqs []queue.Request, plans []plan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, h := range hs {
		o, _ := job.DefaultOptions().Apply(reqs[i].Options...)
		r := s.jobFor(h.ID, h.Queue)
		if !r.known {
			r.known, r.task, r.plan, r.key = true, h.Task, plans[i], o.Key
		}
		if o.Key == "" {
			continue
		}
		k := h.Queue + "|" + o.Key
		for _, other := range s.keyed[k] {
			if other != h.ID {
				s.jobFor(other, h.Queue).maybeReplaced = true
			}
		}
		if ids := s.keyed[k]; len(ids) == 0 || ids[len(ids)-1] != h.ID {
			s.keyed[k] = append(ids, h.ID)
		}
	}
}

// pick returns a random known job, from the most recent ones half of the time.
func (s *suite) pick(rng *rand.Rand) *jobRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.order)
	if n == 0 {
		return nil
	}
	if rng.IntN(2) == 0 && n > 200 {
		return s.order[n-1-rng.IntN(200)]
	}
	return s.order[rng.IntN(n)]
}

// pickIn returns a job of queue q in state st from a random page of its listing.
func (s *suite) pickIn(rng *rand.Rand, q string, st job.State) (string, bool) {
	c, err := s.c.Counts(s.ctx, q)
	if err != nil {
		s.violate("counts: %v", err)
		return "", false
	}
	n := map[job.State]int64{job.StatePending: c.Pending, job.StateScheduled: c.Scheduled, job.StateActive: c.Active,
		job.StateFailed: c.Failed}[st]
	if n == 0 {
		return "", false
	}
	js, err := s.c.List(s.ctx, q, st, rng.IntN(int(n)), 1)
	if err != nil {
		s.violate("list: %v", err)
		return "", false
	}
	if len(js) == 0 {
		return "", false
	}
	return js[0].ID, true
}

// expected reports whether err is one of the refusals an operation on a job that moved
// meanwhile may meet.
func expected(err error) bool {
	return err == nil || errors.Is(err, queue.ErrJobActive) || errors.Is(err, queue.ErrJobEnded) || errors.Is(err, job.ErrNotFound)
}

// operate stops, cancels, deletes and requeues jobs, switches ranking modes and waits
// on jobs with deadlines.
func (s *suite) operate(ctx context.Context, rng *rand.Rand, waiters *sync.WaitGroup) {
	sem := make(chan struct{}, 16)
	wrng := s.rng(1000) // the waiters' deadlines, drawn here in order
	for pace(ctx, ms(rng, 5, 50)) {
		q := queues[rng.IntN(len(queues))]
		switch r := rng.IntN(100); {
		case r < 20: // stop a running job (or, sometimes, any job)
			id, ok := s.pickIn(rng, q, job.StateActive)
			if rng.IntN(5) == 0 {
				if jr := s.pick(rng); jr != nil {
					id, q, ok = jr.id, jr.queue, true
				}
			}
			if ok {
				s.stop(q, id)
			}
		case r < 35: // cancel a waiting job (or any job)
			st := job.StatePending
			if rng.IntN(2) == 0 {
				st = job.StateScheduled
			}
			id, ok := s.pickIn(rng, q, st)
			if rng.IntN(5) == 0 {
				if jr := s.pick(rng); jr != nil {
					id, q, ok = jr.id, jr.queue, true
				}
			}
			if ok {
				s.cancel(q, id)
			}
		case r < 42: // delete any job
			if jr := s.pick(rng); jr != nil {
				s.delete(jr.queue, jr.id)
			}
		case r < 52:
			s.requeue(rng, q)
		case r < 56:
			mode := []ranking.Mode{ranking.ModeFIFO, ranking.ModeShadow, ranking.ModeActive}[rng.IntN(3)]
			if err := s.c.SetRankingMode(s.ctx, q, mode); err != nil {
				s.violate("set ranking mode: %v", err)
			}
			s.count("ranking "+string(mode), 1)
		default: // wait on a job with a deadline
			jr := s.pick(rng)
			if jr == nil {
				continue
			}
			d := ms(wrng, 30, 3000)
			select {
			case sem <- struct{}{}:
			default:
				continue
			}
			waiters.Add(1)
			go func() {
				defer waiters.Done()
				defer func() { <-sem }()
				s.wait(jr, d)
			}()
		}
	}
}

func (s *suite) stop(q, id string) {
	asked := time.Now()
	running, err := s.c.StopJob(s.ctx, q, id)
	now := time.Now()
	if !expected(err) {
		s.violate("stop: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if jr := s.jobFor(id, q); jr.stopAsked.IsZero() {
		jr.stopAsked = asked
	}
	switch {
	case err != nil:
		s.ops["stop refused"]++
	case running:
		s.ops["stop running"]++
		if jr := s.jobFor(id, q); jr.stoppedAt.IsZero() {
			jr.stoppedAt = now
		}
	default:
		s.ops["stop waiting"]++
		if jr := s.jobFor(id, q); jr.canceledAt.IsZero() {
			jr.canceledAt = now
		}
	}
}

func (s *suite) cancel(q, id string) {
	err := s.c.Cancel(s.ctx, q, id)
	now := time.Now()
	if !expected(err) {
		s.violate("cancel: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.ops["cancel refused"]++
		return
	}
	s.ops["cancel"]++
	if jr := s.jobFor(id, q); jr.canceledAt.IsZero() {
		jr.canceledAt = now
	}
}

func (s *suite) delete(q, id string) {
	err := s.c.Delete(s.ctx, q, id)
	now := time.Now()
	if !expected(err) {
		s.violate("delete: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.ops["delete refused"]++
		return
	}
	s.ops["delete"]++
	s.deletedIn[q]++
	s.deleted.Add(1)
	if jr := s.jobFor(id, q); jr.deletedAt.IsZero() {
		jr.deletedAt = now
	}
}

// requeue moves a few failed jobs of q back to pending, or, now and then, all of them.
func (s *suite) requeue(rng *rand.Rand, q string) {
	began := time.Now()
	if rng.IntN(8) == 0 {
		s.mu.Lock()
		s.requeueAll[q] = began
		s.mu.Unlock()
		n, err := s.c.Requeue(s.ctx, q)
		if err != nil {
			s.violate("requeue all: %v", err)
			return
		}
		s.count("requeue all", 1)
		s.count("requeued", n)
		return
	}
	js, err := s.c.List(s.ctx, q, job.StateFailed, 0, 50)
	if err != nil {
		s.violate("list failed: %v", err)
		return
	}
	if len(js) == 0 {
		return
	}
	var ids []string
	for range 1 + rng.IntN(5) {
		ids = append(ids, js[rng.IntN(len(js))].ID)
	}
	s.mu.Lock()
	for _, id := range ids {
		s.jobFor(id, q).requeuedAt = began
	}
	s.mu.Unlock()
	n, err := s.c.Requeue(s.ctx, q, ids...)
	if err != nil {
		s.violate("requeue: %v", err)
		return
	}
	distinct := map[string]bool{}
	for _, id := range ids {
		distinct[id] = true
	}
	switch {
	case n > len(ids):
		s.violate("requeue of %d failed jobs of %s moved %d", len(distinct), q, n)
	case n > len(distinct):
		s.violateUnless("requeue-counts-repeats", "requeue of %d failed jobs of %s (%d ids) moved %d", len(distinct), q, len(ids), n)
	}
	s.count("requeue", 1)
	s.count("requeued", n)
}

// wait waits on a job for d and checks that Wait returns by then.
func (s *suite) wait(jr *jobRec, d time.Duration) {
	ctx, cancel := context.WithTimeout(s.ctx, d)
	defer cancel()
	t0 := time.Now()
	j, err := s.c.Handle(jr.queue, jr.id).Wait(ctx)
	took := time.Since(t0)
	if took > d+waitSlack {
		s.violate("Wait on %s with a deadline of %s returned after %s (%v)", jr.id, d, took.Round(time.Millisecond), err)
	}
	var how byte
	switch {
	case err == nil:
		how = 's'
		if j == nil || j.State != job.StateSucceeded {
			s.violate("Wait on %s returned no error and job %+v", jr.id, j)
		}
	case errors.Is(err, job.ErrCanceled):
		how = 'c'
	case errors.Is(err, job.ErrJobFailed):
		how = 'f'
	case errors.Is(err, job.ErrNotFound):
		how = 'n'
	case errors.Is(err, context.DeadlineExceeded):
		how = 't'
	case isTimeout(err) && ctx.Err() != nil:
		s.violateUnless("wait-deadline-net-error", "Wait on %s with a deadline of %s: %v", jr.id, d, err)
		how = 't'
	default:
		s.violate("Wait on %s: unexpected error %v", jr.id, err)
		return
	}
	s.mu.Lock()
	jr.waits = append(jr.waits, waitVerdict{at: time.Now(), how: how})
	s.ops["wait "+string(how)]++
	s.mu.Unlock()
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// pauser pauses a queue for a while now and then.
func (s *suite) pauser(ctx context.Context, rng *rand.Rand) {
	for pace(ctx, ms(rng, 500, 3000)) {
		q := queues[rng.IntN(len(queues))]
		if err := s.c.Pause(s.ctx, q); err != nil {
			s.violate("pause: %v", err)
			return
		}
		paused := time.Now()
		pace(ctx, ms(rng, 200, 2500))
		until := time.Now()
		if err := s.c.Resume(s.ctx, q); err != nil { // resumed even at the end of the phase
			s.violate("resume %s: %v", q, err)
		}
		s.mu.Lock()
		s.pauses = append(s.pauses, pauseWindow{q, paused, until})
		s.ops["pause"]++
		s.mu.Unlock()
	}
}

// staller stalls Redis with a busy script on a queue's node now and then.
func (s *suite) staller(ctx context.Context, rng *rand.Rand) {
	for pace(ctx, ms(rng, 400, 3000)) {
		q := queues[rng.IntN(len(queues))]
		d := ms(rng, int(minStall/time.Millisecond), int(maxStall/time.Millisecond))
		err := s.rdb.Eval(s.ctx, `
local t0 = redis.call('TIME')
local stop_at = tonumber(t0[1]) * 1e6 + tonumber(t0[2]) + tonumber(ARGV[1])
repeat local t = redis.call('TIME') until tonumber(t[1]) * 1e6 + tonumber(t[2]) >= stop_at
return 1`, []string{clientstore.Of(s.c).Keys(q).Paused + ":stall"}, d.Microseconds()).Err()
		if err != nil {
			s.violate("stall: %v", err)
			return
		}
		s.count("stall", 1)
		s.count("stall ms", int(d/time.Millisecond))
	}
}

// replacer stops a worker now and then and starts another in its place, with a new id.
func (s *suite) replacer(ctx context.Context, rng *rand.Rand) {
	gen := 0
	for pace(ctx, ms(rng, 1500, 6000)) {
		gen++
		slot := rng.IntN(nWorkers)
		s.mu.Lock()
		old := s.workers[slot]
		s.mu.Unlock()
		s.stopWorker(old)
		nw := s.startWorker(slot, gen, rng)
		s.mu.Lock()
		s.workers[slot] = nw
		s.ops["replace worker"]++
		s.mu.Unlock()
	}
}

// checker counts the queues now and then (no more jobs counted than were ever asked
// for, less those deleted) and reads a random job (a succeeded one names a run of its
// own that returned its result).
func (s *suite) checker(ctx context.Context, rng *rand.Rand) {
	for pace(ctx, ms(rng, 100, 400)) {
		deletedBefore := s.deleted.Load()
		var total, backlog int64
		for _, q := range queues {
			c, err := s.c.Counts(s.ctx, q)
			if err != nil {
				s.violate("counts: %v", err)
				return
			}
			if c.Pending < 0 || c.Scheduled < 0 || c.Active < 0 {
				s.violate("negative counts of %s: %+v", q, c)
			}
			total += c.Pending + c.Scheduled + c.Active + c.Failed + c.Succeeded + c.Canceled
			backlog += c.Pending + c.Scheduled
		}
		s.backlog.Store(backlog)
		switch most := s.enqBegun.Load(); {
		case total > most:
			s.violate("counts hold %d jobs, more than the %d ever enqueued", total, most)
		case total > most-deletedBefore:
			s.violateUnless("delete-cancels-waiting", "counts hold %d jobs, more than the %d ever enqueued and not deleted", total, most-deletedBefore)
		}
		s.count("count check", 1)
		if jr := s.pick(rng); jr != nil {
			j, err := s.c.Job(s.ctx, jr.queue, jr.id)
			switch {
			case errors.Is(err, job.ErrNotFound):
			case err != nil:
				s.violate("job: %v", err)
			case j.State == job.StateSucceeded:
				s.checkResult(j)
			}
		}
	}
}

// checkResult checks that a succeeded job's result names a run of it that returned it.
// Returns that run.
func (s *suite) checkResult(j *job.Job) *runRec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkResultLocked(j)
}

func (s *suite) checkResultLocked(j *job.Job) *runRec {
	var name string
	if err := j.DecodeResult(&name); err != nil {
		s.violate("job %s succeeded with a result that is no run's name: %v", j.ID, err)
		return nil
	}
	r := s.runs[name]
	switch {
	case r == nil || r.job != j.ID:
		s.violate("job %s succeeded with result %q, which names no run of it", j.ID, name)
		return nil
	case !r.ended || !r.ok:
		s.violate("job %s succeeded with the result of run %s, which had not returned it (ended %v, ok %v)", j.ID, name, r.ended, r.ok)
	}
	return r
}

// drain lets the workers finish every job: the queues are resumed and nothing is
// stalled any more.
func (s *suite) drain() {
	var last []queue.Counts
	drained := s.until(2*time.Minute, func() bool {
		last = last[:0]
		done := true
		for _, q := range queues {
			c, err := s.c.Counts(s.ctx, q)
			last = append(last, c)
			if err != nil || c.Pending+c.Scheduled+c.Active > 0 || c.Paused {
				done = false
			}
		}
		return done
	})
	if !drained {
		s.violate("the queues did not drain within 2m (nothing pending, scheduled or active): %+v", last)
	}
}

// until waits for cond, up to timeout, and reports whether it held: testutil.Eventually
// without the Fatalf, so that a run that fails to settle still reports what it saw.
func (s *suite) until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond) // a re-check interval, not synchronisation
	}
	return true
}

func (s *suite) stopAll() {
	var wg sync.WaitGroup
	for _, wr := range s.workers {
		wg.Add(1)
		go func() { defer wg.Done(); s.stopWorker(wr) }()
	}
	wg.Wait()
}

func (s *suite) closeAll() {
	_ = s.c.Close()
	_ = s.rdb.Close()
}

// report logs what the run did.
func (s *suite) report(chaos, total time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	known := 0
	for _, jr := range s.jobs {
		if jr.known {
			known++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: random phase %s, whole run %s; %d jobs, %d runs, %d workers in all\n",
		s.cfg.seed, chaos.Round(time.Millisecond), total.Round(time.Millisecond), known, s.nruns, len(s.allWorkers))
	b.WriteString("steps run:")
	for k := range nKinds {
		fmt.Fprintf(&b, " %s %d", k, s.stepCount[k])
	}
	b.WriteString("\noperations:")
	for _, k := range sortedKeys(s.ops) {
		fmt.Fprintf(&b, " [%s %d]", k, s.ops[k])
	}
	s.vmu.Lock()
	if len(s.tolerated) > 0 {
		b.WriteString("\nknown defects met (tolerated):")
		for _, k := range sortedKeys(s.tolerated) {
			fmt.Fprintf(&b, " [%s %d: %s]", k, s.tolerated[k], knownDefects[k])
		}
	}
	s.vmu.Unlock()
	b.WriteString("\nworker log lines:")
	s.logs.mu.Lock()
	for _, k := range sortedKeys(s.logs.counts) {
		fmt.Fprintf(&b, " [%s %d]", k, s.logs.counts[k])
	}
	s.logs.mu.Unlock()
	s.t.Log(b.String())
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// tally is a log handler that counts the messages logged (info and above), by level
// and message: the report shows how often leases were lost, jobs handed back, and so on.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
}

func (l *tally) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelInfo }
func (l *tally) WithAttrs([]slog.Attr) slog.Handler            { return l }
func (l *tally) WithGroup(string) slog.Handler                 { return l }
func (l *tally) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.counts[r.Level.String()+" "+r.Message]++
	l.mu.Unlock()
	return nil
}
