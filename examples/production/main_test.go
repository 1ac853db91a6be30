package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestProductionExample(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	var out bytes.Buffer
	// Beat false: the entries are stored but not fired, so that a run across a 5-minute
	// boundary does not add a health check to the counts below
	rep, err := run(ctx, rdb, &out, settings{Backoff: 20 * time.Millisecond, Work: 50 * time.Millisecond, Beat: false})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())

	// the retried job: refused twice by the busy cluster, done on its third attempt, and
	// the first short Wait timed out while it was backing off
	if rep.Train.Attempt != 3 || rep.Train.Model != "stock_predictor" {
		t.Errorf("training result %+v, want stock_predictor on attempt 3", rep.Train)
	}
	if !strings.Contains(out.String(), "not done after 20ms") {
		t.Errorf("the short Wait did not time out:\n%s", out.String())
	}
	// the by-name jobs' results, as the second service decoded them
	if rep.Urgent.OutputPath != "/datasets/processed/urgent.csv" || rep.Urgent.Chunks != 10 {
		t.Errorf("urgent csv result %+v", rep.Urgent)
	}
	if rep.Pong["status"] != "pong" || rep.Pong["worker"] == "" {
		t.Errorf("ping result %v", rep.Pong)
	}
	// priority 9 overtook the waiting batch: it waited only for data's 4 busy slots
	if rep.BulkFirst > queueSlots[QueueData] {
		t.Errorf("%d batch files started before the urgent one, want at most %d", rep.BulkFirst, queueSlots[QueueData])
	}
	// each queue kept to its cap; data, with 8 files waiting, reached it
	for q, limit := range queueSlots {
		if rep.MostRunning[q] > limit {
			t.Errorf("queue %s ran %d jobs at once, cap %d", q, rep.MostRunning[q], limit)
		}
	}
	if rep.MostRunning[QueueData] != queueSlots[QueueData] {
		t.Errorf("data ran at most %d at once, want its cap %d", rep.MostRunning[QueueData], queueSlots[QueueData])
	}

	// what Redis holds: every job on its task's queue, succeeded, one of them retried
	c := queue.NewClient(rdb, queue.Config{})
	defer c.Close()
	want := map[string]struct {
		prefix    string
		succeeded int64
	}{
		QueueML:      {"ml.", 4},     // the urgent training, the retrain, its 2 trainings
		QueueData:    {"data.", 10},  // the hourly run, its 8 files, the urgent file
		QueueDefault: {"simple.", 1}, // the ping
	}
	retried := 0
	for q, w := range want {
		n, err := c.Counts(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if n.Succeeded != w.succeeded || n.Failed+n.Pending+n.Scheduled+n.Active != 0 {
			t.Errorf("queue %s: %+v, want %d succeeded and nothing else", q, n, w.succeeded)
		}
		jobs, err := c.List(ctx, q, job.StateSucceeded, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if !strings.HasPrefix(j.Task, w.prefix) {
				t.Errorf("%s ran on queue %s", j.Task, q)
			}
			if j.Attempt != 1 {
				retried++
				if j.Task != DistributedTraining.Name() || j.Attempt != 3 {
					t.Errorf("%s %s took %d attempts", j.Task, j.ID, j.Attempt)
				}
			}
		}
	}
	if retried != 1 {
		t.Errorf("%d jobs needed retries, want 1", retried)
	}

	// the beat's entries are stored, each with its next run
	b, err := beat.New(c, beat.Config{})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	found := false
	for _, e := range entries {
		if e.Error != "" {
			t.Errorf("entry %s: %s", e.Name, e.Error)
		}
		if e.Name != "daily-model-retraining" {
			continue
		}
		found = true
		next := e.Next.UTC()
		if e.Task != RetrainModels.Name() || e.Queue != QueueML || next.Hour() != 2 || next.Minute() != 0 ||
			!next.After(now) || next.After(now.Add(24*time.Hour)) {
			t.Errorf("daily retrain entry %+v, next %s: want ml.retrain_models on ml at the next 02:00 UTC", e.Entry, next)
		}
	}
	if !found || len(entries) != len(schedule()) {
		t.Errorf("beat entries %+v, want the %d of schedule()", entries, len(schedule()))
	}
}
