// Command learnedorder shows what chronoq's learned dequeue order buys: the same backlog
// of short, medium and long jobs is drained first in fifo mode, then in active mode,
// by the same worker with two slots, and the mean completion time (finish − enqueue)
// of each is printed.
//
// The queue first runs a warm-up batch in shadow mode: jobs run in arrival order while
// every task type's run time is learned and each prediction judged, which is how a
// queue goes to production (shadow, look at the numbers, then flip to active at run
// time, without a restart). Nothing is configured per task: the three types' durations
// are learned from the warm-up alone.
//
//	go run ./examples/learnedorder                                             # embedded Redis
//	CHRONOQ_REDIS_URL=redis://127.0.0.1:6379/0 go run ./examples/learnedorder  # your Redis
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/chronoq/chronoq/internal/devredis"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/sim"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// MediaArgs are the arguments of every task here.
type MediaArgs struct {
	File string `json:"file"`
}

const mediaQueue = "media"

// kinds are the task types of the mix, each with the time its handler takes. They share
// one queue: the learned order keeps one lane per task type and learns each lane's mean.
var kinds = []struct {
	task *job.Task[MediaArgs]
	took time.Duration
}{
	{job.NewTask[MediaArgs]("media.analyze", job.Queue(mediaQueue)), 2 * time.Millisecond},
	{job.NewTask[MediaArgs]("media.resize", job.Queue(mediaQueue)), 20 * time.Millisecond},
	{job.NewTask[MediaArgs]("media.transcode", job.Queue(mediaQueue)), 200 * time.Millisecond},
}

// round is how work arrives: in every round 4 analyze, 2 resize and 1 transcode jobs,
// interleaved (indexes into kinds). Many short jobs and a few long ones is the mix where
// arrival order hurts most: every short job that arrives after a long one waits for it.
var round = []int{0, 1, 0, 2, 0, 1, 0}

// Sizes of the demo: rounds in the warm-up and in the backlog, and the worker's slots.
// A backlog of 5 rounds is 35 jobs, about 0.6 s of work on 2 slots.
const (
	warmupRounds  = 2
	backlogRounds = 5
	slots         = 2
)

func main() {
	rdb, stop, err := devredis.Open()
	if err != nil {
		fmt.Fprintln(os.Stderr, "learnedorder:", err)
		os.Exit(1)
	}
	defer stop()
	if _, err := run(context.Background(), rdb, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "learnedorder:", err)
		os.Exit(1)
	}
}

// outcome is one drain of the backlog.
type outcome struct {
	Mode   ranking.Mode
	Mean   time.Duration            // mean completion over every job
	ByTask map[string]time.Duration // mean completion per task
	Order  []string                 // tasks in the order they started
}

// result is what run measured.
type result struct {
	FIFO, Active outcome
}

func run(ctx context.Context, rdb *redis.Client, out io.Writer) (result, error) {
	var res result
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := queue.NewClient(rdb, queue.Config{Logger: quiet})
	defer c.Close()
	w, err := worker.New(c, worker.Config{Queues: []worker.QueueConfig{{Name: mediaQueue}}, Concurrency: slots, Logger: quiet})
	if err != nil {
		return res, err
	}
	for _, k := range kinds {
		worker.Handle(w, k.task, func(ctx context.Context, a MediaArgs) error {
			select { // stands in for real work of k.took
			case <-time.After(k.took):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}
	if err := w.Start(ctx); err != nil {
		return res, err
	}
	defer w.Stop(context.Background())

	// 1. shadow: arrival order, but run times are learned (fifo mode learns nothing)
	if err := c.SetRankingMode(ctx, mediaQueue, ranking.ModeShadow); err != nil {
		return res, err
	}
	if _, err := drain(ctx, c, mix(warmupRounds)); err != nil {
		return res, fmt.Errorf("warm-up: %w", err)
	}
	stats, err := c.RankingStats(ctx, mediaQueue)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(out, "learned in shadow mode from a warm-up of %d jobs:\n", warmupRounds*len(round))
	for _, s := range stats {
		if s.Task != "" { // the entry without a task is the queue-wide mean
			fmt.Fprintf(out, "  %-16s mean %6.1f ms over %d runs\n", s.Task, s.MeanMs, s.Count)
		}
	}

	// what shadow mode can tell before anything is switched: the warm-up's jobs replayed
	// through the simulator in both orders
	est, err := sim.EstimateQueue(ctx, c, mediaQueue, slots)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(out, "  estimate from the warm-up: fifo %.0f ms, active %.0f ms mean completion (%d jobs simulated)\n",
		est.FIFOMeanMs, est.ActiveMeanMs, est.Jobs)

	// 2. the same backlog in each mode; the mode switch takes effect at the next fetch
	backlog := mix(backlogRounds)
	for _, mode := range []ranking.Mode{ranking.ModeFIFO, ranking.ModeActive} {
		if err := c.SetRankingMode(ctx, mediaQueue, mode); err != nil {
			return res, err
		}
		o, err := drain(ctx, c, backlog)
		if err != nil {
			return res, fmt.Errorf("%s: %w", mode, err)
		}
		o.Mode = mode
		if mode == ranking.ModeFIFO {
			res.FIFO = o
		} else {
			res.Active = o
		}
	}
	fmt.Fprintf(out, "a backlog of %d jobs (%d rounds of: %s) on %d slots\n", len(backlog), backlogRounds, roundString(), slots)
	fmt.Fprintf(out, "mean completion (finish - enqueue):\n")
	for _, o := range []outcome{res.FIFO, res.Active} {
		fmt.Fprintf(out, "  %-6s %6s   by task:", o.Mode, ms(o.Mean))
		for _, k := range kinds {
			fmt.Fprintf(out, " %s %s", short(k.task.Name()), ms(o.ByTask[k.task.Name()]))
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "active / fifo = %.2f\n", float64(res.Active.Mean)/float64(res.FIFO.Mean))
	for _, o := range []outcome{res.FIFO, res.Active} {
		var first []string
		for _, t := range o.Order[:8] {
			first = append(first, short(t))
		}
		fmt.Fprintf(out, "first 8 started, %-6s %s\n", o.Mode+":", strings.Join(first, " "))
	}
	// fifo mode records no predictions, so the window's newest jobs are the active run's
	q, err := c.RankingQuality(ctx, mediaQueue, len(backlog))
	if err != nil {
		return res, err
	}
	fmt.Fprintf(out, "predictions in the active run were off by %.1f ms on average (%d jobs)\n", q.Overall.MAEMs, q.Overall.Samples)
	return res, nil
}

// mix returns the jobs of n rounds, in arrival order.
func mix(n int) []queue.Request {
	var reqs []queue.Request
	for i := range n {
		for j, k := range round {
			t := kinds[k].task
			p, err := t.Encode(MediaArgs{File: fmt.Sprintf("upload-%d-%d", i, j)})
			if err != nil {
				panic(err) // a struct of one string always encodes
			}
			reqs = append(reqs, queue.Request{Task: t.Name(), Payload: p, Options: t.Options()})
		}
	}
	return reqs
}

// drain enqueues reqs as one backlog and waits until every job has ended. The queue is
// paused while they are enqueued so that the order, not the enqueue loop, decides which
// job runs first.
func drain(ctx context.Context, c *queue.Client, reqs []queue.Request) (outcome, error) {
	o := outcome{ByTask: map[string]time.Duration{}}
	if err := c.Pause(ctx, mediaQueue); err != nil {
		return o, err
	}
	// One job per millisecond: arrival is kept to the ms, and jobs of different tasks
	// that arrive in the same ms are taken in lane-name order, not enqueue order, even in
	// fifo mode (EnqueueBatch stamps a whole batch with one ms). Spacing them makes fifo
	// the true arrival order, so the comparison is fair.
	hs := make([]*queue.Handle, len(reqs))
	for i, r := range reqs {
		h, err := c.EnqueueRaw(ctx, r.Task, r.Payload, r.Options...)
		if err != nil {
			return o, err
		}
		hs[i] = h
		time.Sleep(time.Millisecond)
	}
	if err := c.Resume(ctx, mediaQueue); err != nil {
		return o, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var total time.Duration
	n := map[string]int{}
	var jobs []*job.Job
	for _, h := range hs {
		j, err := h.Wait(wctx)
		if err != nil {
			return o, err
		}
		took := j.FinishedAt.Sub(j.EnqueuedAt)
		total += took
		o.ByTask[j.Task] += took
		n[j.Task]++
		jobs = append(jobs, j)
	}
	o.Mean = total / time.Duration(len(hs))
	for t := range o.ByTask {
		o.ByTask[t] /= time.Duration(n[t])
	}
	slices.SortStableFunc(jobs, func(a, b *job.Job) int { return a.StartedAt.Compare(b.StartedAt) })
	for _, j := range jobs {
		o.Order = append(o.Order, j.Task)
	}
	return o, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }

// short drops the "media." prefix for a compact line.
func short(task string) string { return strings.TrimPrefix(task, "media.") }

// roundString describes a round, e.g. "analyze resize analyze transcode ...".
func roundString() string {
	var names []string
	for _, k := range round {
		names = append(names, short(kinds[k].task.Name()))
	}
	return strings.Join(names, " ")
}
