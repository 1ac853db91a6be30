// Command fairshare plays the story celery-ranch was written for: one tenant's bulk
// import lands thousands of jobs on a queue at once, while other tenants' interactive
// requests keep arriving. The same workload runs twice on the same worker, first with
// fairness off, then in share mode, and the requests' wait (start − enqueue, p50 and
// p99) and the import's throughput are printed for each. Off, a request waits behind the
// whole import; with share, a tenant with nothing running goes first, and the import
// keeps nearly all of the workers.
//
// A second queue then shows a weight: two tenants' exports at once, the premium one of
// weight 2, which gets twice the other's worker time, with the key view (FairKeys) at
// one moment of the run.
//
// Nothing else changes between the runs: the mode is switched at run time, and every
// job carries its tenant as its fair key (job.FairKey) in both. It takes about 8 s
// (12 s on the embedded Redis).
//
//	go run ./examples/fairshare                                             # embedded Redis
//	CHRONOQ_REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/fairshare  # your Redis
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chronoq/chronoq/internal/devredis"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking/fairshare"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// RowArgs are the arguments of one row of an import or an export.
type RowArgs struct {
	Tenant string `json:"tenant"`
	Row    int    `json:"row"`
}

// RequestArgs are the arguments of one interactive request.
type RequestArgs struct {
	Tenant string `json:"tenant"`
	N      int    `json:"n"`
}

const (
	appQueue    = "app"
	exportQueue = "exports"
)

// The tasks, with the time each handler takes.
var (
	importRow = job.NewTask[RowArgs]("app.import_row", job.Queue(appQueue))
	request   = job.NewTask[RequestArgs]("app.request", job.Queue(appQueue))
	exportRow = job.NewTask[RowArgs]("exports.row", job.Queue(exportQueue))
)

// Sizes of the demo. The import is 2000 × 4 ms on 4 slots, about 2 s of the whole
// worker (nearer 3 s with each job's fetch and ack); the requests, 100 a second of
// 2 ms, need a fifth of one slot plus their own overhead, so with share the import
// should keep about 90% of its speed.
const (
	slots        = 4
	importJobs   = 2000
	importTook   = 4 * time.Millisecond
	requestTook  = 2 * time.Millisecond
	requestEvery = 10 * time.Millisecond // between any two requests, tenants in turn
	exportJobs   = 600                   // per exporting tenant
	exportTook   = 4 * time.Millisecond
)

const importer = "import-acme"

// tenants send the interactive requests.
var tenants = []string{"tenant-bolt", "tenant-cobalt", "tenant-delta", "tenant-echo", "tenant-fern"}

// The exporting tenants of the weight demo: premium has weight 2.
const (
	premium  = "export-globex"
	standard = "export-initech"
)

func main() {
	rdb, stop, err := devredis.Open()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fairshare:", err)
		os.Exit(1)
	}
	defer stop()
	if _, err := run(context.Background(), rdb, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fairshare:", err)
		os.Exit(1)
	}
}

// outcome is one run of the import beside the requests.
type outcome struct {
	Mode             fairshare.Mode
	Requests         int           // requests sent (and run) while the import ran
	WaitP50, WaitP99 time.Duration // requests' start − enqueue
	ImportPerSec     float64       // import jobs / (last import job's end − the import's enqueue)
	ImportTook       time.Duration
}

// weighted is the weight demo's result.
type weighted struct {
	View                   []fairshare.KeyInfo // FairKeys at one moment, both tenants backlogged
	ViewAt                 time.Time           // when it was read
	ViewAfter              int                 // jobs ended when it was read
	Tagged                 []string            // keys tagged plan=premium
	PremiumFirst, StdFirst int                 // of the first exportJobs jobs started, each tenant's
}

// result is what run measured.
type result struct {
	Off, Share outcome
	Weight     weighted
}

func run(ctx context.Context, rdb *redis.Client, out io.Writer) (result, error) {
	var res result
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := queue.NewClient(rdb, queue.Config{Logger: quiet})
	defer c.Close()
	w, err := worker.New(c, worker.Config{
		Queues:      []worker.QueueConfig{{Name: appQueue}, {Name: exportQueue}},
		Concurrency: slots, Logger: quiet,
	})
	if err != nil {
		return res, err
	}
	rec := newRecorder()
	worker.Handle(w, importRow, func(ctx context.Context, a RowArgs) error { return rec.work(ctx, importTook) })
	worker.Handle(w, request, func(ctx context.Context, a RequestArgs) error { return rec.work(ctx, requestTook) })
	worker.Handle(w, exportRow, func(ctx context.Context, a RowArgs) error { return rec.work(ctx, exportTook) })
	if err := w.Start(ctx); err != nil {
		return res, err
	}
	defer w.Stop(context.Background())

	// share charges each job its predicted run time at start (corrected at ack): priors
	// make the first jobs' predictions right before anything has been learned
	for q, p := range map[string]map[string]float64{
		appQueue:    {importRow.Name(): ms(importTook), request.Name(): ms(requestTook)},
		exportQueue: {exportRow.Name(): ms(exportTook)},
	} {
		if err := c.SetPriors(ctx, q, p); err != nil {
			return res, err
		}
	}

	fmt.Fprintf(out, "queue %s, %d slots: %s enqueues %d jobs (%s each) at once, while %d tenants send\n",
		appQueue, slots, importer, importJobs, importTook, len(tenants))
	fmt.Fprintf(out, "a request (%s) every %s between them, until the import is done\n\n", requestTook, requestEvery)
	fmt.Fprintf(out, "  fair mode  requests  wait p50  wait p99  import jobs/s  import took\n")
	for _, mode := range []fairshare.Mode{fairshare.ModeOff, fairshare.ModeShare} {
		// at run time, no restart: this client's own enqueues follow at once, other
		// producers within 2 s
		if err := c.SetFairMode(ctx, appQueue, mode); err != nil {
			return res, err
		}
		o, err := runImport(ctx, c, rec)
		if err != nil {
			return res, fmt.Errorf("%s: %w", mode, err)
		}
		o.Mode = mode
		if mode == fairshare.ModeOff {
			res.Off = o
		} else {
			res.Share = o
		}
		fmt.Fprintf(out, "  %-9s  %8d  %8s  %8s  %13.0f  %11s\n", o.Mode, o.Requests,
			o.WaitP50.Round(time.Millisecond), o.WaitP99.Round(time.Millisecond), o.ImportPerSec, o.ImportTook.Round(10*time.Millisecond))
	}
	fmt.Fprintf(out, "\nwith share, requests waited %s at p99 instead of %s, and the import ran at %.2f× its speed with fairness off\n\n",
		res.Share.WaitP99.Round(time.Millisecond), res.Off.WaitP99.Round(time.Millisecond), res.Share.ImportPerSec/res.Off.ImportPerSec)

	res.Weight, err = runWeights(ctx, c, rec, out)
	return res, err
}

// runImport enqueues the import, sends requests until it is done, and waits for every
// job to end.
func runImport(ctx context.Context, c *queue.Client, rec *recorder) (outcome, error) {
	var o outcome
	rec.reset()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	rows := make([]queue.Request, importJobs)
	for i := range rows {
		rows[i] = request1(importRow, RowArgs{Tenant: importer, Row: i}, job.FairKey(importer))
	}
	start := time.Now()
	if _, err := c.EnqueueBatch(ctx, rows); err != nil {
		return o, err
	}
	importDone := make(chan error, 1)
	go func() {
		importDone <- rec.waitFor(ctx, func(r *recorder) bool { return r.count(importRow.Name()) == importJobs })
	}()

	// the requests arrive steadily, the tenants in turn, until the import is done
	tick := time.NewTicker(requestEvery)
	defer tick.Stop()
	sent := 0
send:
	for {
		select {
		case err := <-importDone:
			if err != nil {
				return o, fmt.Errorf("import: %w", err)
			}
			break send
		case <-tick.C:
			t := tenants[sent%len(tenants)]
			if _, err := queue.Enqueue(ctx, c, request, RequestArgs{Tenant: t, N: sent}, job.FairKey(t)); err != nil {
				return o, err
			}
			sent++
		}
	}
	if err := rec.waitFor(ctx, func(r *recorder) bool { return r.count(request.Name()) == sent }); err != nil {
		return o, fmt.Errorf("requests: %w", err)
	}

	var waits []time.Duration
	var lastImport time.Time
	for _, r := range rec.snapshot() {
		switch r.task {
		case request.Name():
			waits = append(waits, r.started.Sub(r.enqueued))
		case importRow.Name():
			if r.ended.After(lastImport) {
				lastImport = r.ended
			}
		}
	}
	slices.Sort(waits)
	o.Requests = len(waits)
	o.WaitP50, o.WaitP99 = quantile(waits, 0.50), quantile(waits, 0.99)
	o.ImportTook = lastImport.Sub(start)
	o.ImportPerSec = float64(importJobs) / o.ImportTook.Seconds()
	return o, nil
}

// runWeights runs two tenants' exports at once on the exports queue, the premium
// tenant with weight 2, and reads the key view while both are backlogged.
func runWeights(ctx context.Context, c *queue.Client, rec *recorder, out io.Writer) (weighted, error) {
	var wt weighted
	rec.reset()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := c.SetFairMode(ctx, exportQueue, fairshare.ModeShare); err != nil {
		return wt, err
	}
	if err := c.SetFairWeight(ctx, exportQueue, premium, 2); err != nil {
		return wt, err
	}
	for key, plan := range map[string]string{premium: "premium", standard: "standard"} {
		if err := c.SetFairTags(ctx, exportQueue, key, map[string]string{"plan": plan}); err != nil {
			return wt, err
		}
	}
	// paused while both exports are enqueued, so that neither gets a head start
	if err := c.Pause(ctx, exportQueue); err != nil {
		return wt, err
	}
	var rows []queue.Request
	for i := range exportJobs {
		for _, t := range []string{standard, premium} {
			rows = append(rows, request1(exportRow, RowArgs{Tenant: t, Row: i}, job.FairKey(t)))
		}
	}
	if _, err := c.EnqueueBatch(ctx, rows); err != nil {
		return wt, err
	}
	if err := c.Resume(ctx, exportQueue); err != nil {
		return wt, err
	}

	// a third of the way: the premium tenant has used about 2/3 of its share by now,
	// so both are still backlogged
	wt.ViewAfter = 2 * exportJobs / 3
	if err := rec.waitFor(ctx, func(r *recorder) bool { return r.count(exportRow.Name()) >= wt.ViewAfter }); err != nil {
		return wt, err
	}
	view, _, err := c.FairKeys(ctx, exportQueue, 0, 10)
	if err != nil {
		return wt, err
	}
	wt.View, wt.ViewAt = view, time.Now()
	if wt.Tagged, err = c.FairKeysTagged(ctx, exportQueue, "plan", "premium", 10); err != nil {
		return wt, err
	}
	if err := rec.waitFor(ctx, func(r *recorder) bool { return r.count(exportRow.Name()) == 2*exportJobs }); err != nil {
		return wt, err
	}

	// the premium tenant drains first, after about 3/4 of all jobs: in the first half
	// both were backlogged throughout
	recs := rec.snapshot()
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].started.Before(recs[j].started) })
	for _, r := range recs[:exportJobs] {
		if r.key == premium {
			wt.PremiumFirst++
		} else {
			wt.StdFirst++
		}
	}

	fmt.Fprintf(out, "queue %s in share mode: %s (plan=premium, weight 2) and %s (weight 1)\n", exportQueue, premium, standard)
	fmt.Fprintf(out, "each enqueue %d jobs (%s each) at once; the key view after %d jobs had ended:\n\n", exportJobs, exportTook, wt.ViewAfter)
	// running counts the leases a key holds, so a job whose ack is still on its way (the
	// worker acks in batches) counts too; share and used are decayed over about a minute
	fmt.Fprintf(out, "  %-16s %7s %7s %6s %6s %8s  %-14s %s\n", "key", "pending", "running", "weight", "share", "used", "tags", "last served")
	for _, k := range view {
		var tags []string
		for n, v := range k.Tags {
			tags = append(tags, n+"="+v)
		}
		sort.Strings(tags)
		fmt.Fprintf(out, "  %-16s %7d %7d %6.1f %6.2f %6.0fms  %-14s %s ago\n", k.Key, k.Pending, k.Running, k.Weight, k.Share, k.UsedMs,
			strings.Join(tags, ","), max(wt.ViewAt.Sub(k.LastServed), 0).Round(time.Millisecond))
	}
	fmt.Fprintf(out, "\nkeys tagged plan=premium: %v\n", wt.Tagged)
	fmt.Fprintf(out, "of the first %d jobs started, %s ran %d and %s %d (%.2f : 1)\n",
		exportJobs, premium, wt.PremiumFirst, standard, wt.StdFirst, float64(wt.PremiumFirst)/float64(max(wt.StdFirst, 1)))
	return wt, nil
}

// request1 is one typed job as a batch request.
func request1[A any](t *job.Task[A], args A, opts ...job.Option) queue.Request {
	p, err := t.Encode(args)
	if err != nil {
		panic(err) // these argument structs always encode
	}
	return queue.Request{Task: t.Name(), Payload: p, Options: slices.Concat(t.Options(), opts)}
}

// record is one job as its handler saw it.
type record struct {
	task, key                string
	enqueued, started, ended time.Time
}

// recorder keeps what the handlers saw, and wakes waiters at every job's end.
type recorder struct {
	mu      sync.Mutex
	recs    []record
	counts  map[string]int
	changed chan struct{} // closed and replaced at every record
}

func newRecorder() *recorder {
	return &recorder{counts: map[string]int{}, changed: make(chan struct{})}
}

// work stands in for a job's work of d, then records the job.
func (r *recorder) work(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return ctx.Err()
	}
	j := job.FromContext(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, record{task: j.Task, key: j.Options.FairKey, enqueued: j.EnqueuedAt, started: j.StartedAt, ended: time.Now()})
	r.counts[j.Task]++
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs, r.counts = nil, map[string]int{}
}

// count is how many jobs of task have ended; call it only inside waitFor's condition.
func (r *recorder) count(task string) int { return r.counts[task] }

// waitFor waits until cond holds (checked under the lock at every job's end) or ctx
// ends.
func (r *recorder) waitFor(ctx context.Context, cond func(*recorder) bool) error {
	for {
		r.mu.Lock()
		ok, ch := cond(r), r.changed
		r.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *recorder) snapshot() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs)
}

// quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
