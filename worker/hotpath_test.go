package worker_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// Redis commands per job on the hot path, counted by Redis itself (INFO stats'
// total_commands_processed, which counts the commands scripts run too). Counts, not
// times: a change that adds a Redis command per job, or per fetch or acknowledgement,
// raises them and fails here. Raise a figure only with a measurement that says what
// the command buys (docs/benchmarks.md), never to make this pass.
const (
	// maxDrainCommandsPerJob: a backlog drained one job per fetch (Concurrency 1,
	// BatchSize 1): the fetch script and its share of the acknowledgement scripts, each
	// with the commands they run. 22.05–22.2 on 2026-12-02, after a full fetch stopped
	// counting the index when no lane emptied (22.8–23.1 before); acknowledgements batch
	// one or two jobs as timing goes, and 23.2 is the figure with every batch of one.
	maxDrainCommandsPerJob = 23.2
	// maxEnqueueCommandsPerJob: a single immediate enqueue into a queue nobody waits on
	// (a paused one): 4.05–4.09 on 2026-12-02.
	maxEnqueueCommandsPerJob = 4.2
	// maxDrainCommandsPerJobLimited: the same drain with a cap on the task that never
	// binds: 27.5–27.7 on 2026-12-02, six more than without. Per fetch HGETALL of the
	// settings, HMGET of the group's state and HSET of its count; per acknowledgement
	// HMGET of the counts and of the caps, and HDEL or HSET of the counts (one fetch
	// and one acknowledgement per job here; a batch shares them).
	maxDrainCommandsPerJobLimited = 28.5
)

// commandsProcessed reads how many commands Redis has processed (this INFO included).
func commandsProcessed(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no total_commands_processed in INFO stats")
	return 0
}

func TestHotPathCommandsPerJob(t *testing.T) {
	enqueue, drain := hotPathCommands(t, nil)
	t.Logf("Redis commands per job: enqueue %.2f (at most %.1f), drain %.2f (at most %.1f)",
		enqueue, maxEnqueueCommandsPerJob, drain, maxDrainCommandsPerJob)
	if enqueue > maxEnqueueCommandsPerJob {
		t.Errorf("an immediate enqueue costs %.2f Redis commands, over the %.1f of maxEnqueueCommandsPerJob", enqueue, maxEnqueueCommandsPerJob)
	}
	if drain > maxDrainCommandsPerJob {
		t.Errorf("draining one job per fetch costs %.2f Redis commands per job, over the %.1f of maxDrainCommandsPerJob", drain, maxDrainCommandsPerJob)
	}
}

// With a fleet-wide cap on the task (one that never binds), each fetch reads the
// limits and the group's state and writes its count, and each acknowledgement frees
// it: the cost of a limit that is on, per job (docs/limits.md).
func TestHotPathCommandsPerJobWithLimit(t *testing.T) {
	cap1000 := &job.Limit{Scope: job.ScopeTask, Task: noop.Name(), MaxRunning: 1000}
	enqueue, drain := hotPathCommands(t, cap1000)
	t.Logf("with a limit: Redis commands per job: enqueue %.2f, drain %.2f (at most %.1f)", enqueue, drain, maxDrainCommandsPerJobLimited)
	if drain > maxDrainCommandsPerJobLimited {
		t.Errorf("draining one job per fetch under a limit costs %.2f Redis commands per job, over the %.1f of maxDrainCommandsPerJobLimited", drain, maxDrainCommandsPerJobLimited)
	}
}

// hotPathCommands enqueues a backlog into a paused queue and drains it one job per
// fetch, with limit set on the queue if not nil: Redis commands per job of each.
func hotPathCommands(t *testing.T, limit *job.Limit) (enqueue, drain float64) {
	e := newEnv(t, queue.Config{})
	if limit != nil {
		must(t, e.c.SetLimit(e.ctx, job.DefaultQueue, *limit))
	}
	const n = 400
	var ran atomic.Int64
	allRan := make(chan struct{})
	// the queue is paused while the backlog is enqueued, so that the drain is measured
	// apart from the enqueues
	must(t, e.c.Pause(e.ctx, job.DefaultQueue))
	w := start(t, e, worker.Config{Concurrency: 1, BatchSize: 1, Lease: time.Hour, HeartbeatInterval: time.Hour, IdleBlock: 5 * time.Second},
		func(w *worker.Worker) {
			worker.Handle(w, noop, func(ctx context.Context, _ struct{}) error {
				if ran.Add(1) == n {
					close(allRan)
				}
				return nil
			})
		})

	before := commandsProcessed(t, e.rdb)
	for range n {
		_, err := queue.Enqueue(e.ctx, e.c, noop, struct{}{})
		must(t, err)
	}
	enqueue = float64(commandsProcessed(t, e.rdb)-before-1) / n

	// the drain: from Resume to a stopped worker (Stop records every outcome first), so
	// its few commands of resuming and stopping count too, spread over n jobs
	before = commandsProcessed(t, e.rdb)
	must(t, e.c.Resume(e.ctx, job.DefaultQueue))
	select {
	case <-allRan:
	case <-e.ctx.Done():
		t.Fatalf("only %d of %d jobs ran", ran.Load(), n)
	}
	must(t, w.Stop(e.ctx))
	drain = float64(commandsProcessed(t, e.rdb)-before-1) / n
	if c, err := e.c.Counts(e.ctx, job.DefaultQueue); err != nil || c.Succeeded != n {
		t.Fatalf("counts after the drain: %+v %v, want %d succeeded", c, err, n)
	}
	return enqueue, drain
}
