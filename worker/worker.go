package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

// Worker runs jobs from one or more queues. Make it with New, register tasks, then
// Run it (or Start and Stop it).
type Worker struct {
	cfg      Config
	store    *store.Store
	log      *slog.Logger
	metrics  metrics
	activity activity

	mu         sync.Mutex
	handlers   map[string]Handler
	declared   map[string]job.Options // typed tasks' options, stored at Start
	undeclared map[string]job.Options // of those, the limits not stored yet (declareLimits)
	middleware []Middleware
	started    bool

	// running jobs and jobs whose outcome is not yet recorded, by lease (not by job id:
	// after a lost lease the same worker may run the job again under a newer one); their
	// leases are renewed
	held        map[leaseKey]*execution
	shadows     int64                   // runs moved aside by a lease of the same start (see startJobIn)
	perQueue    map[string]int          // running jobs per queue
	fetching    map[string]bool         // queues with a fetch still out past fetchPatience (cluster)
	capped      map[string]bool         // queues with their own concurrency cap
	idleBlocked atomic.Bool             // the fetch loop is blocked waiting for work
	freed       atomic.Uint64           // slots freed so far
	free        int                     // free slots (below 0 while autoscaling cut more than were free)
	slots       int                     // the slot count: Concurrency, or autoscaled (autoscale.go)
	scaler      *scaler                 // nil unless Config.Autoscale is on
	slotsObs    SlotsObserver           // Config.Observer, when it is one
	tokenIn     time.Duration           // fetch loop's: the soonest token of rate-limited work, this round (noteToken)
	slotFreed   chan struct{}           // signalled (non-blocking) when a slot frees
	renewNow    chan struct{}           // asks the renewer for a round now (it reads stop requests)
	acks        map[string]chan ackItem // by queue: each queue's acknowledgements go apart
	startedAt   time.Time
	// isolate: on a Redis Cluster, one master's trouble is kept to its queues (nodes.go)
	isolate   bool
	health    health
	bgCtx     context.Context // the background loops' context (and the probes')
	launched  chan struct{}   // closed once Start has launched its loops
	fetchStop context.CancelFunc
	bgStop    context.CancelFunc
	jobsBase  context.Context // parent of every job's context: Start's values, never canceled
	runners   runners         // the goroutines executions run on
	loops     sync.WaitGroup  // fetch loop
	bg        sync.WaitGroup  // renewer, reaper, promoter, heartbeat, acker
	jobs      sync.WaitGroup  // executors
	claims    sync.WaitGroup  // claims of handed-off jobs already running (startHandOff)
	stopOnce  sync.Once
	stopErr   error
}

type ackItem struct {
	queue string
	done  store.Done
	task  string
	ran   time.Duration // the handler's run time
	wait  time.Duration // from due to start, for the activity ring
	known bool          // wait is known
}

// New returns a worker on the client's Redis. It checks cfg and fills its defaults.
func New(c *queue.Client, cfg Config) (*Worker, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	acks := make(map[string]chan ackItem, len(cfg.Queues))
	for _, q := range cfg.Queues {
		acks[q.Name] = make(chan ackItem, 4*cfg.Concurrency+16)
	}
	slots, obs := cfg.Concurrency, cfg.Observer
	var sc *scaler
	if cfg.Autoscale.on() {
		// the rule learns from the observations: with autoscaling off, nothing on
		// the path of a job changes
		slots, sc = cfg.Autoscale.Min, newScaler(cfg.Autoscale)
		if obs == nil {
			obs = sc
		} else {
			obs = observers{obs, sc}
		}
	}
	slotsObs, _ := cfg.Observer.(SlotsObserver)
	return &Worker{
		cfg: cfg, store: clientstore.Of(c), metrics: metrics{o: obs},
		slots: slots, scaler: sc, slotsObs: slotsObs,
		isolate:   clientstore.Of(c).IsCluster(),
		health:    health{sick: map[string]*sickness{}, inflight: map[string]bool{}},
		log:       cfg.Logger.With("worker", cfg.ID),
		handlers:  map[string]Handler{},
		held:      map[leaseKey]*execution{},
		runners:   newRunners(cfg.Concurrency),
		perQueue:  map[string]int{},
		fetching:  map[string]bool{},
		capped:    capped(cfg.Queues),
		free:      slots,
		slotFreed: make(chan struct{}, 1),
		renewNow:  make(chan struct{}, 1),
		acks:      acks,
	}, nil
}

// ID is the worker's id, as shown in heartbeats and job records.
func (w *Worker) ID() string { return w.cfg.ID }

// Start begins fetching and running jobs; it returns at once. ctx bounds the worker's
// life: when it is done the worker stops as Stop would.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return errors.New("worker: already started")
	}
	if len(w.handlers) == 0 {
		w.mu.Unlock()
		return errors.New("worker: no task registered")
	}
	w.started = true
	w.startedAt = w.store.Now()
	// everything Stop calls exists before Start lets go of the lock; Stop waits for
	// launched, and cancels fetchCtx first, which ends the round trips below early
	bgCtx, bgStop := context.WithCancel(context.WithoutCancel(ctx))
	fetchCtx, fetchStop := context.WithCancel(bgCtx)
	w.bgStop, w.fetchStop, w.bgCtx = bgStop, fetchStop, bgCtx
	w.jobsBase = context.WithoutCancel(ctx)
	w.launched = make(chan struct{})
	declared := maps.Clone(w.declared)
	w.mu.Unlock()
	defer close(w.launched)

	setup, endSetup := context.WithCancel(ctx)
	defer endSetup()
	defer context.AfterFunc(fetchCtx, endSetup)()
	if err := w.store.LoadScripts(setup); err != nil {
		w.log.Warn("cannot load scripts yet; will retry as Redis answers", "err", err)
	}
	for _, q := range w.cfg.Queues {
		if err := w.store.RegisterQueue(setup, q.Name); err != nil {
			w.log.Warn("cannot declare queue yet", "queue", q.Name, "err", err)
		}
	}
	if err := w.store.SetTaskDefaults(setup, declared); err != nil {
		w.log.Warn("cannot store the tasks' declared options; jobs enqueued by name get the defaults", "err", err)
	}
	w.declareLimits(setup, declared)

	w.bg.Add(5 + len(w.acks))
	for q, ch := range w.acks {
		go w.ackLoop(q, ch)
	}
	go w.activityLoop(bgCtx)
	go w.renewLoop(bgCtx)
	go w.reapLoop(bgCtx)
	go w.promoteLoop(bgCtx)
	go w.heartbeatLoop(bgCtx)
	w.observeSlots(w.Slots()) // before the scale loop's first change
	if w.scaler != nil {
		w.bg.Add(1)
		go w.scaleLoop(bgCtx)
	}
	w.loops.Add(1)
	go w.fetchLoop(fetchCtx)
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				_ = w.Stop(context.Background())
			case <-bgCtx.Done():
			}
		}()
	}
	if a := w.cfg.Autoscale; a.on() {
		w.log.Info("worker started", "queues", w.queueNames(), "concurrency", w.cfg.Concurrency, "autoscale", fmt.Sprintf("%d..%d", a.Min, a.Max),
			"tasks", len(w.handlers))
	} else {
		w.log.Info("worker started", "queues", w.queueNames(), "concurrency", w.cfg.Concurrency, "tasks", len(w.handlers))
	}
	return nil
}

// Run starts the worker and blocks until ctx is done or the process gets SIGINT or
// SIGTERM, then stops gracefully within ShutdownTimeout.
func (w *Worker) Run(ctx context.Context) error {
	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := w.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-sigCtx.Done():
		w.log.Info("signal received, shutting down", "grace", w.cfg.ShutdownTimeout)
	}
	return w.Stop(context.Background())
}

// Stop stops fetching, lets running jobs finish for up to ShutdownTimeout (or until ctx
// is done), then cancels the rest and hands them straight back to pending. It
// returns once every outcome is recorded in Redis (or could not be).
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	started, fetchStop, launched := w.started, w.fetchStop, w.launched
	w.mu.Unlock()
	if !started {
		return nil // nothing to stop, and a later Start/Stop must still work
	}
	// a Stop during Start: end Start's round trips, and let it launch its loops (they
	// see fetchCtx done) before stopping them
	fetchStop()
	select {
	case <-launched:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.stopOnce.Do(func() { w.stopErr = w.stop(ctx) })
	return w.stopErr
}

func (w *Worker) stop(ctx context.Context) error {
	w.fetchStop()
	w.loops.Wait()

	grace, cancel := context.WithTimeout(ctx, w.cfg.ShutdownTimeout)
	defer cancel()
	finished := make(chan struct{})
	go func() { w.jobs.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-grace.Done():
		// hand back what is still running, then cancel it: the job runs again elsewhere.
		// A claim still out would make a hand-off this worker's after the hand-back
		// missed it (its owner was still the hand-off's): let the claims end first (each
		// within 5 s; no new one starts, the fetch loop has ended)
		w.claims.Wait()
		w.mu.Lock()
		byQueue := map[string][]store.Lease{}
		for _, r := range w.held {
			if !r.done && !r.lost {
				byQueue[r.queue] = append(byQueue[r.queue], r.lease())
			}
		}
		w.mu.Unlock()
		hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
		queues := make([]string, 0, len(byQueue))
		for q := range byQueue {
			queues = append(queues, q)
		}
		var handing sync.WaitGroup // per queue, each within hctx: one node's trouble holds no other's
		for _, q := range queues {
			handing.Add(1)
			go func() {
				defer handing.Done()
				n, err := w.store.HandBack(hctx, q, w.cfg.ID, byQueue[q])
				if err != nil {
					w.log.Error("hand back failed; the jobs return after their lease", "queue", q, "jobs", len(byQueue[q]), "err", err)
				} else {
					w.log.Info("handed unfinished jobs back to pending", "queue", q, "jobs", n)
				}
			}()
		}
		handing.Wait()
		hcancel()
		w.endUndecided()
		<-finished // every execution is decided now; handlers may linger, ignored
	}
	w.runners.close()
	for _, ch := range w.acks {
		close(ch) // executors are done or abandoned: no more sends
	}
	w.bgStop()
	w.bg.Wait()
	w.observeSlots(0)
	w.stopProbes()
	uctx, ucancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer ucancel()
	w.flushActivity(uctx)
	if err := w.store.Unregister(uctx, w.cfg.ID); err != nil {
		w.log.Warn("unregister failed", "err", err)
	}
	w.log.Info("worker stopped")
	return nil
}

// leaseKey names a run by its lease: the job and the lease's start in ms.
type leaseKey struct {
	id      string
	startMs int64
}

func keyOf(l store.Lease) leaseKey { return leaseKey{l.ID, l.Start.UnixMilli()} }

func (w *Worker) queueNames() []string {
	out := make([]string, len(w.cfg.Queues))
	for i, q := range w.cfg.Queues {
		out[i] = q.Name
	}
	return out
}

// sleepCtx waits d or until ctx is done; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backoff is the pause after the n-th consecutive Redis error (n from 1).
func backoff(n int) time.Duration {
	d := 50 * time.Millisecond << min(n-1, 7)
	return min(d, 5*time.Second)
}

func (w *Worker) String() string { return fmt.Sprintf("worker %s", w.cfg.ID) }

func capped(qs []QueueConfig) map[string]bool {
	m := map[string]bool{}
	for _, q := range qs {
		m[q.Name] = q.Concurrency > 0
	}
	return m
}

func hostPID() (string, int) {
	h, _ := os.Hostname()
	return h, os.Getpid()
}
