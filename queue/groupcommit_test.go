package queue_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/redis/go-redis/v9"
)

var groupTask = job.NewTask[int]("group.task")

// evalshaCalls reads how many EVALSHA calls Redis has served.
func evalshaCalls(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:calls="); ok {
			n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			return n
		}
	}
	return 0
}

// Concurrent single enqueues on one client share script calls, and every caller gets
// its own job.
func TestGroupCommitCoalesces(t *testing.T) {
	rdb := redistest.Client(t)
	c := queue.NewClient(rdb, queue.Config{})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Pause(ctx, job.DefaultQueue); err != nil { // nobody fetches meanwhile
		t.Fatal(err)
	}
	_, _ = queue.Enqueue(ctx, c, groupTask, -1) // scripts loaded, queue registered
	const callers, each = 32, 40
	before := evalshaCalls(t, rdb)
	var mu sync.Mutex
	ids := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				h, err := queue.Enqueue(ctx, c, groupTask, g*each+i)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ids[h.ID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("enqueue: %v", err)
	}
	scripts := evalshaCalls(t, rdb) - before
	if len(ids) != callers*each {
		t.Fatalf("%d distinct handles for %d enqueues", len(ids), callers*each)
	}
	counts, err := c.Counts(ctx, job.DefaultQueue)
	if err != nil || counts.Pending != callers*each+1 {
		t.Fatalf("pending %d (%v), want %d", counts.Pending, err, callers*each+1)
	}
	t.Logf("%d enqueues from %d goroutines in %d script calls", callers*each, callers, scripts)
	if scripts >= callers*each {
		t.Errorf("%d script calls for %d concurrent enqueues: none were grouped", scripts, callers*each)
	}
}

// A batch that fails fails only its own callers: enqueues to another queue of the same
// client, at the same time, succeed.
func TestGroupCommitFailureStaysWithItsQueue(t *testing.T) {
	rdb := redistest.Client(t)
	c := queue.NewClient(rdb, queue.Config{})
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = queue.Enqueue(ctx, c, groupTask, 0, job.Queue("bad"))
	// the bad queue's job records are not a hash: every enqueue there fails
	if err := rdb.Set(ctx, clientstore.Of(c).Keys("bad").Records, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	good, bad := 0, 0
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := "good"
			if g%2 == 1 {
				q = "bad"
			}
			for i := range 20 {
				_, err := queue.Enqueue(ctx, c, groupTask, i, job.Queue(q))
				mu.Lock()
				switch {
				case q == "good" && err != nil:
					t.Errorf("enqueue to the good queue failed: %v", err)
				case q == "good":
					good++
				case err == nil || !strings.Contains(err.Error(), "WRONGTYPE"):
					t.Errorf("enqueue to the bad queue: %v, want its WRONGTYPE", err)
				default:
					bad++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	counts, err := c.Counts(ctx, "good")
	if err != nil || counts.Pending != int64(good) || good != 160 || bad != 160 {
		t.Fatalf("good queue: %d pending (%v); %d good and %d bad calls, want 160 each", counts.Pending, err, good, bad)
	}
}

// A caller whose context ends while it waits for the batch before it leaves without
// storing anything, and says so.
func TestGroupCommitCanceledWaiter(t *testing.T) {
	rdb := redistest.Client(t)
	c := queue.NewClient(rdb, queue.Config{})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	_, _ = queue.Enqueue(ctx, c, groupTask, 0)
	// canceled calls either never stored their job (context error) or stored it (no
	// error): never an error with the job stored
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored := 0
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithCancel(ctx)
			if i%2 == 0 {
				cancel()
			}
			defer cancel()
			_, err := queue.Enqueue(cctx, c, groupTask, i)
			if err == nil {
				mu.Lock()
				stored++
				mu.Unlock()
			} else if !errors.Is(err, context.Canceled) {
				t.Errorf("enqueue: %v", err)
			}
		}()
	}
	wg.Wait()
	counts, err := c.Counts(ctx, job.DefaultQueue)
	if err != nil || counts.Pending != int64(stored+1) {
		t.Fatalf("pending %d (%v), but %d calls said stored", counts.Pending, err, stored)
	}
}
