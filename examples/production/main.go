// Command production mirrors the Celery deployment chronoq is meant to replace (a
// "production-ready Celery setup": queues ml, data and default with 2, 4 and 4 worker
// slots, priorities 0–9, retries with exponential backoff, a daily model retrain and an
// hourly data run on the beat, result.get(timeout=...), and services that send tasks by
// name). It shows each of those in chronoq:
//
//   - tasks.go: the task declarations a deployment shares between its worker and its
//     Go producers (queue, retries with backoff, timeout per task);
//   - newWorker: one worker serving the three queues, each capped at its own
//     concurrency, with a middleware that sees every job;
//   - schedule: the beat's entries (daily retrain at 02:00, hourly data run, health
//     check every 5 minutes), stored in Redis, fired once however many replicas run;
//   - run: a Go producer that enqueues typed jobs with priorities and waits with
//     timeouts, one job that fails twice and succeeds on its third attempt;
//   - secondService: a program that imports neither the tasks nor the worker and
//     enqueues by name (Celery's send_task), with JSON arguments.
//
// Everything runs in one process here; in production the worker (with the beat) is its
// own binary, see cli.Main. The demo shortens the retry backoff (the tasks declare 1
// minute, doubling) and the stand-in tasks' work, so it ends in about a second:
//
//	go run ./examples/production                                             # embedded Redis
//	CHRONOQ_REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/production  # your Redis
//	go run ./examples/production -backoff 1m                                 # the seed's delays: 3 minutes
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/internal/devredis"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// settings are the durations the demo compresses.
type settings struct {
	Backoff time.Duration // base of the retry backoff; the tasks declare 1 minute
	Work    time.Duration // how long a stand-in training or CSV job works
	// Beat runs the beat's loop, which fires the entries when due; without it they are
	// only stored. (The test leaves it out: on a 5-minute boundary the health check
	// would fire into the job counts it checks.)
	Beat bool
}

func main() {
	s := settings{Beat: true}
	flag.DurationVar(&s.Backoff, "backoff", 200*time.Millisecond, "base of the retry backoff (the tasks declare 1m, as the seed)")
	flag.DurationVar(&s.Work, "work", 100*time.Millisecond, "how long each stand-in training or CSV job works")
	flag.Parse()
	rdb, stop, err := devredis.Open()
	if err != nil {
		fmt.Fprintln(os.Stderr, "production:", err)
		os.Exit(1)
	}
	defer stop()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if _, err := run(ctx, rdb, os.Stdout, s); err != nil {
		fmt.Fprintln(os.Stderr, "production:", err)
		os.Exit(1)
	}
}

// queueSlots are the seed's worker concurrencies per queue.
var queueSlots = map[string]int{QueueML: 2, QueueData: 4, QueueDefault: 4}

// newWorker is the worker binary's setup: its queues, its tasks, its middleware.
func newWorker(c *queue.Client, ray *rayCluster, rec *recorder, s settings, logger *slog.Logger) (*worker.Worker, error) {
	w, err := worker.New(c, worker.Config{
		// The seed ran one Celery worker per queue. One chronoq worker can serve all
		// three: each queue is capped at its own concurrency, so a burst of data jobs
		// never takes ml's slots, and the weights share the fetches in the same ratio.
		Queues: []worker.QueueConfig{
			{Name: QueueML, Concurrency: queueSlots[QueueML], Weight: 1},
			{Name: QueueData, Concurrency: queueSlots[QueueData], Weight: 2},
			{Name: QueueDefault, Concurrency: queueSlots[QueueDefault], Weight: 2},
		},
		Concurrency:     queueSlots[QueueML] + queueSlots[QueueData] + queueSlots[QueueDefault],
		ShutdownTimeout: 30 * time.Second, // then unfinished jobs go back to pending for another worker
		Logger:          logger,
	})
	if err != nil {
		return nil, err
	}
	w.Use(rec.middleware) // where logging, metrics or tracing of every job would go

	worker.HandleResult(w, DistributedTraining, func(ctx context.Context, a TrainArgs) (TrainResult, error) {
		attempt := job.FromContext(ctx).Attempt
		if err := ray.submit(ctx, a.Model, s.Work); err != nil {
			return TrainResult{}, err // an error retries the job after its backoff
		}
		return TrainResult{Model: a.Model, AvgScore: score(a.ModelConfig), Attempt: attempt}, nil
	})
	worker.HandleResult(w, RetrainModels, func(ctx context.Context, _ NoArgs) (Enqueued, error) {
		// like the seed's retrain_models: enqueue one training per model and return
		// their ids at once; waiting for them here would hold an ml slot they need
		models := []TrainArgs{
			{Model: "stock_predictor", ModelConfig: ModelConfig{NEstimators: 100, MaxDepth: 20}, DatasetPath: "/datasets/stocks_latest.csv"},
			{Model: "sentiment_analyzer", ModelConfig: ModelConfig{NEstimators: 100, MaxDepth: 20}, DatasetPath: "/datasets/sentiment_latest.csv"},
		}
		hs, err := queue.EnqueueMany(ctx, c, DistributedTraining, models)
		if err != nil {
			return Enqueued{}, err
		}
		return Enqueued{Jobs: ids(hs)}, nil
	})
	worker.HandleResult(w, ProcessNewData, func(ctx context.Context, _ NoArgs) (Enqueued, error) {
		// the hourly run: one job per new file, at the default priority (5), so that
		// anything more urgent overtakes the batch
		var files []CSVArgs
		for i := range 8 {
			var f CSVArgs
			f.FilePath = fmt.Sprintf("/datasets/new/part-%d.csv", i)
			f.OutputPath = fmt.Sprintf("/datasets/processed/part-%d.csv", i)
			f.Transformations.Filter = map[string]float64{"amount": 100}
			f.Transformations.NumChunks = 5
			files = append(files, f)
		}
		hs, err := queue.EnqueueMany(ctx, c, ProcessLargeCSV, files)
		if err != nil {
			return Enqueued{}, err
		}
		return Enqueued{Jobs: ids(hs)}, nil
	})
	worker.HandleResult(w, ProcessLargeCSV, func(ctx context.Context, a CSVArgs) (CSVResult, error) {
		if err := work(ctx, s.Work); err != nil {
			return CSVResult{}, err
		}
		return CSVResult{OutputPath: a.OutputPath, Chunks: a.Transformations.NumChunks}, nil
	})
	worker.HandleResult(w, Ping, func(ctx context.Context, _ NoArgs) (Pong, error) {
		return Pong{Status: "pong", Worker: w.ID()}, nil
	})
	worker.Handle(w, CheckClusterHealth, func(ctx context.Context, _ NoArgs) error { return ray.health() })
	return w, nil
}

func intp(n int) *int { return &n }

// schedule is the beat's entries: the seed's beat_schedule.
func schedule() []beat.Entry {
	return []beat.Entry{
		// the seed's 'schedule': 3600 * 24, pinned to 02:00 UTC so a restart does not
		// move it; overlap skip: never two retrains at once; catch-up latest: after an
		// outage, run the missed night once
		{Name: "daily-model-retraining", Spec: "0 2 * * *", Task: RetrainModels.Name(), Queue: QueueML,
			Priority: intp(7), Overlap: beat.OverlapSkip, CatchUp: beat.CatchUpLatest},
		{Name: "hourly-data-processing", Spec: "@hourly", Task: ProcessNewData.Name(), Queue: QueueData, Overlap: beat.OverlapSkip},
		{Name: "cluster-health", Spec: "*/5 * * * *", Task: CheckClusterHealth.Name(), Queue: QueueDefault},
	}
}

// report is what run saw, for its test.
type report struct {
	Train       TrainResult
	Urgent      CSVResult
	Pong        map[string]any
	BulkFirst   int            // CSV jobs of the hourly batch that started before the urgent one
	MostRunning map[string]int // the most jobs of each queue that ran at once
}

func run(ctx context.Context, rdb *redis.Client, out io.Writer, s settings) (*report, error) {
	say := log.New(out, "", 0) // safe from every goroutine
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := queue.NewClient(rdb, queue.Config{Logger: quiet})
	defer c.Close()

	ray := &rayCluster{busy: 2} // still scaling up: the first two submissions are refused
	rec := newRecorder()
	w, err := newWorker(c, ray, rec, s, quiet)
	if err != nil {
		return nil, err
	}
	if err := w.Start(ctx); err != nil { // also declares the queues, which the beat needs
		return nil, err
	}
	defer w.Stop(context.Background())

	// The beat. Run it in every worker process (chronoq-worker run --beat) or as its own
	// process: each tick fires once. Start stores the entries and reports bad ones; Run
	// would only log them.
	b, err := beat.New(c, beat.Config{Entries: schedule(), Logger: quiet})
	if err != nil {
		return nil, err
	}
	if err := b.Start(ctx); err != nil {
		return nil, err
	}
	if s.Beat {
		bctx, stopBeat := context.WithCancel(ctx)
		beatDone := make(chan struct{})
		go func() { defer close(beatDone); _ = b.Run(bctx) }()
		defer func() { stopBeat(); <-beatDone }()
	}
	entries, err := b.List(ctx)
	if err != nil {
		return nil, err
	}
	say.Printf("beat entries:")
	for _, e := range entries {
		say.Printf("  %-23s %-12s %-28s on %-7s next %s", e.Name, e.Spec, e.Task, e.Queue, e.Next.Format(time.RFC3339))
	}

	rep := &report{}

	// 1. An urgent training from a Go producer: priority 9, the seed's "high-priority
	// ML task". Ray refuses it twice; it retries with backoff and succeeds on attempt 3.
	// (The enqueue option overrides the task's 1-minute backoff, only to keep the demo
	// short; without it the task's own policy applies.)
	h, err := queue.Enqueue(ctx, c, DistributedTraining,
		TrainArgs{Model: "stock_predictor", ModelConfig: ModelConfig{NEstimators: 200, MaxDepth: 30}, DatasetPath: "/datasets/training_data"},
		job.Priority(9), job.WithBackoff(job.Backoff{Base: s.Backoff, Factor: 2, Max: 30 * time.Minute}))
	if err != nil {
		return nil, err
	}
	say.Printf("enqueued %s %s on %s, priority 9", h.Task, h.ID, h.Queue)
	// result.get(timeout=...): a Wait that times out leaves the job running. This one
	// cannot be done within one backoff: two retries are at least 3 backoffs away.
	short, cancel := context.WithTimeout(ctx, s.Backoff)
	_, err = h.Wait(short)
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		j, err := h.Job(ctx)
		if err != nil {
			return nil, err
		}
		say.Printf("  not done after %s: %s after attempt %d (%s); waiting longer", s.Backoff, j.State, j.Attempt, j.LastError)
	} else if err != nil {
		return nil, err
	}
	long, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if rep.Train, err = queue.WaitResult[TrainResult](long, h); err != nil {
		return nil, fmt.Errorf("training: %w", err)
	}
	say.Printf("  %s trained: avg score %.3f on attempt %d", rep.Train.Model, rep.Train.AvgScore, rep.Train.Attempt)

	// 2. The hourly data run, started now by hand (the beat starts it on the hour).
	hd, err := queue.Enqueue(ctx, c, ProcessNewData, NoArgs{})
	if err != nil {
		return nil, err
	}
	batch, err := queue.WaitResult[Enqueued](long, hd)
	if err != nil {
		return nil, fmt.Errorf("hourly data run: %w", err)
	}
	say.Printf("hourly data run enqueued %d CSV jobs on %s (priority 5)", len(batch.Jobs), QueueData)

	// 3. Another service, while the batch runs: an urgent file at priority 9 and a ping.
	if rep.Urgent, rep.Pong, err = secondService(ctx, rdb, say); err != nil {
		return nil, err
	}
	for _, id := range batch.Jobs {
		if _, err := c.Handle(QueueData, id).Wait(long); err != nil {
			return nil, fmt.Errorf("csv %s: %w", id, err)
		}
	}
	rep.BulkFirst = rec.startedBefore(ProcessLargeCSV.Name(), 5, 9)
	say.Printf("the urgent file (priority 9) arrived after all %d batch files (priority 5) and started ahead of %d of them",
		len(batch.Jobs), len(batch.Jobs)-rep.BulkFirst)

	// 4. The nightly retrain, run once now: the job the beat enqueues at 02:00.
	hr, err := queue.Enqueue(ctx, c, RetrainModels, NoArgs{})
	if err != nil {
		return nil, err
	}
	retrain, err := queue.WaitResult[Enqueued](long, hr)
	if err != nil {
		return nil, fmt.Errorf("retrain: %w", err)
	}
	for _, id := range retrain.Jobs {
		var r TrainResult
		if err := c.Handle(QueueML, id).Result(long, &r); err != nil {
			return nil, fmt.Errorf("retrain %s: %w", id, err)
		}
		say.Printf("retrain: %s avg score %.3f", r.Model, r.AvgScore)
	}

	rep.MostRunning = rec.mostRunning()
	// Counts are the queue's totals in Redis: on a shared Redis they include earlier runs
	for _, q := range []string{QueueML, QueueData, QueueDefault} {
		n, err := c.Counts(ctx, q)
		if err != nil {
			return nil, err
		}
		say.Printf("queue %-7s %2d succeeded, %d retried, %d failed; at most %d running at once (cap %d)",
			q, n.Succeeded, n.Retried, n.Failed, rep.MostRunning[q], queueSlots[q])
	}
	return rep, nil
}

// secondService is another program (a reporting API, another team's service, a script)
// that shares only Redis and the task names with the workers: it imports packages queue
// and job, never the task declarations.
func secondService(ctx context.Context, rdb redis.UniversalClient, say *log.Logger) (CSVResult, map[string]any, error) {
	c := queue.NewClient(rdb, queue.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer c.Close()
	// The arguments as JSON (stored as msgpack, integers as integers). By name, the
	// task's declared queue is unknown here: name it, or the job goes to "default".
	csv, err := c.EnqueueJSON(ctx, "data.process_large_csv", []byte(`{
		"file_path": "/datasets/urgent.csv", "output_path": "/datasets/processed/urgent.csv",
		"transformations": {"filter": {"amount": 100}, "num_chunks": 10}}`),
		job.Queue("data"), job.Priority(9))
	if err != nil {
		return CSVResult{}, nil, err
	}
	say.Printf("second service: enqueued data.process_large_csv %s by name, priority 9", csv.ID)
	ping, err := c.EnqueueByName(ctx, "simple.ping", nil) // Celery's send_task('...ping')
	if err != nil {
		return CSVResult{}, nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// the result by its wire names, into this service's own type (the same shape)
	var res CSVResult
	if err := csv.Result(wctx, &res); err != nil {
		return CSVResult{}, nil, fmt.Errorf("urgent csv: %w", err)
	}
	say.Printf("second service: urgent file -> %s in %d chunks", res.OutputPath, res.Chunks)
	pong, err := queue.WaitResult[map[string]any](wctx, ping)
	if err != nil {
		return CSVResult{}, nil, fmt.Errorf("ping: %w", err)
	}
	say.Printf("second service: simple.ping on %s -> %v", ping.Queue, pong)
	return res, pong, nil
}

func ids(hs []*queue.Handle) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.ID
	}
	return out
}

// work stands in for a task's real work, honouring cancellation (a timeout, a shutdown).
func work(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// score is a stand-in model score, so results are checkable.
func score(m ModelConfig) float64 {
	return 0.8 + float64(m.NEstimators)/2000 + float64(m.MaxDepth)/1000
}

// rayCluster stands in for the Ray cluster the seed's tasks submit heavy work to.
type rayCluster struct {
	mu   sync.Mutex
	busy int // submissions still to refuse
}

var errRayBusy = errors.New("ray cluster busy: no free CPUs")

func (r *rayCluster) submit(ctx context.Context, _ string, d time.Duration) error {
	r.mu.Lock()
	busy := r.busy > 0
	if busy {
		r.busy--
	}
	r.mu.Unlock()
	if busy {
		return errRayBusy
	}
	return work(ctx, d)
}

func (r *rayCluster) health() error { return nil }

// recorder is a middleware that notes which jobs ran where and when, and how many of
// each queue ran at once.
type recorder struct {
	mu      sync.Mutex
	running map[string]int
	most    map[string]int
	starts  []start
}

type start struct {
	task     string
	priority int
	at       time.Time // when the job was fetched (jobs fetched together share it)
}

func newRecorder() *recorder {
	return &recorder{running: map[string]int{}, most: map[string]int{}}
}

func (r *recorder) middleware(next worker.Handler) worker.Handler {
	return func(ctx context.Context, j *job.Job) (any, error) {
		q := j.Options.Queue
		r.mu.Lock()
		r.running[q]++
		r.most[q] = max(r.most[q], r.running[q])
		r.starts = append(r.starts, start{j.Task, j.Options.Priority, j.StartedAt})
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			r.running[q]--
			r.mu.Unlock()
		}()
		return next(ctx, j)
	}
}

// startedBefore counts jobs of task at priority low that were fetched before the first
// one at priority high. Fetch times, not the order handlers begin in: jobs fetched in
// one batch start their goroutines in any order.
func (r *recorder) startedBefore(task string, low, high int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first time.Time
	for _, s := range r.starts {
		if s.task == task && s.priority == high && (first.IsZero() || s.at.Before(first)) {
			first = s.at
		}
	}
	n := 0
	for _, s := range r.starts {
		if s.task == task && s.priority == low && s.at.Before(first) {
			n++
		}
	}
	return n
}

func (r *recorder) mostRunning() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for q, n := range r.most {
		out[q] = n
	}
	return out
}
