package harness

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/fairshare"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// Chronoq is chronoq as a System. Its worker process is the running binary re-executed
// with childArgs (the caller's main must route them to ChronoqChild).
type Chronoq struct {
	c         *queue.Client
	url       string
	childArgs []string
	// Ranking, when its Mode is set, is applied to the bench queue before each drain.
	Ranking ranking.Config
	// FairKeys, when positive, spreads the jobs over that many fair keys (round robin)
	// and puts the bench queue in share mode.
	FairKeys int
	// LimitCap, when positive, caps the drained task's running jobs fleet-wide.
	LimitCap int
	next     int // the next job's key number
}

// keyOpts are the options of the next job: its fair key, with FairKeys set.
func (s *Chronoq) keyOpts() []job.Option {
	if s.FairKeys <= 0 {
		return nil
	}
	s.next++
	return []job.Option{job.FairKey("tenant-" + strconv.Itoa(s.next%s.FairKeys))}
}

// Prepare implements Preparer: it sets the bench queue's ranking mode.
func (s *Chronoq) Prepare(ctx context.Context) error {
	if s.LimitCap > 0 {
		if err := s.c.SetLimit(ctx, "bench", job.Limit{Scope: job.ScopeTask, Task: benchNoop.Name(), MaxRunning: s.LimitCap}); err != nil {
			return err
		}
	}
	if s.FairKeys > 0 {
		if err := s.c.SetFairMode(ctx, "bench", fairshare.ModeShare); err != nil {
			return err
		}
	}
	if s.Ranking.Mode == "" {
		return nil
	}
	if err := s.c.SetPriors(ctx, "bench", map[string]float64{"noop": 1, "noop2": 2, "noop3": 3, "noop4": 4, "noop5": 5}); err != nil {
		return err
	}
	return s.c.SetRanking(ctx, "bench", s.Ranking)
}

// benchTasks are the no-op task types of W4 (and of W1 in active mode, through noop).
var benchTasks = []string{"noop", "noop2", "noop3", "noop4", "noop5"}

// EnqueueTypes enqueues n no-op jobs spread over five task types, in bulk.
func (s *Chronoq) EnqueueTypes(ctx context.Context, n int, progress func(done int)) error {
	const chunk = 10000
	for done := 0; done < n; done += chunk {
		reqs := make([]queue.Request, min(chunk, n-done))
		for i := range reqs {
			reqs[i] = queue.Request{Task: benchTasks[(done+i)%len(benchTasks)], Options: []job.Option{job.Queue("bench")}}
		}
		if _, err := s.c.EnqueueBatch(ctx, reqs); err != nil {
			return err
		}
		if progress != nil {
			progress(done + len(reqs))
		}
	}
	return nil
}

var benchNoop = job.NewTask[int64]("noop", job.Queue("bench"))

// NewChronoq returns the chronoq system on rdb (whose URL is url).
func NewChronoq(rdb *redis.Client, url string, childArgs ...string) *Chronoq {
	return &Chronoq{c: queue.NewClient(rdb, queue.Config{}), url: url, childArgs: childArgs}
}

// Name implements System.
func (s *Chronoq) Name() string { return "chronoq" }

// EnqueueOne implements System.
func (s *Chronoq) EnqueueOne(ctx context.Context, ns int64) error {
	_, err := queue.Enqueue(ctx, s.c, benchNoop, ns, s.keyOpts()...)
	return err
}

// EnqueueBulk implements System.
func (s *Chronoq) EnqueueBulk(ctx context.Context, n int) (bool, error) {
	if s.FairKeys <= 0 {
		_, err := queue.EnqueueMany(ctx, s.c, benchNoop, make([]int64, n))
		return true, err
	}
	reqs := make([]queue.Request, n)
	payload, err := job.EncodeArgs(int64(0))
	if err != nil {
		return true, err
	}
	for i := range reqs {
		reqs[i] = queue.Request{Task: "noop", Payload: payload, Options: append([]job.Option{job.Queue("bench")}, s.keyOpts()...)}
	}
	_, err = s.c.EnqueueBatch(ctx, reqs)
	return true, err
}

// WorkerCmd implements System.
func (s *Chronoq) WorkerCmd(args ...string) *Cmd {
	return selfCmd(append(append(append([]string(nil), s.childArgs...), "--redis", s.url), args...)...)
}

// ChronoqChild is chronoq's worker process: it runs n no-op jobs at concurrency conc,
// stops (every outcome recorded), and prints the result line.
func ChronoqChild(url string, conc, n int) error {
	rdb, w, err := childWorker(url, worker.Config{Queues: []worker.QueueConfig{{Name: "bench"}}, Concurrency: conc})
	if err != nil {
		return err
	}
	rec := NewRecorder(n)
	worker.Handle(w, benchNoop, func(ctx context.Context, ns int64) error {
		rec.Start(ns)
		rec.Done()
		return nil
	})
	for _, t := range benchTasks[1:] {
		w.HandleFunc(t, func(ctx context.Context, j *job.Job) (any, error) {
			rec.Start(0)
			rec.Done()
			return nil, nil
		})
	}
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		return err
	}
	stopProfile := StartProfile()
	rdb.Set(ctx, "bench:ready", strconv.Itoa(os.Getpid()), time.Minute)
	<-rec.Reached
	stopProfile()
	if err := w.Stop(ctx); err != nil {
		return err
	}
	rec.Print(time.Now().UnixNano())
	return nil
}

// childWorker is a bench worker process's Redis client and worker (cfg with a silent
// logger), its pool sized for cfg.Concurrency.
func childWorker(url string, cfg worker.Config) (*redis.Client, *worker.Worker, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, nil, err
	}
	opt.PoolSize = max(opt.PoolSize, 4*cfg.Concurrency)
	rdb := redis.NewClient(opt)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := worker.New(queue.NewClient(rdb, queue.Config{Logger: cfg.Logger}), cfg)
	if err != nil {
		_ = rdb.Close()
		return nil, nil, err
	}
	return rdb, w, nil
}
