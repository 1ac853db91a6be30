package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestSmokeEnqueueFetchAck(t *testing.T) {
	ctx := context.Background()
	s := New(redistest.Client(t), "t", nil)
	jobs := []NewJob{
		{ID: "a1", Lane: "5:x", Record: []byte("r1")},
		{ID: "a2", Lane: "5:y", Record: []byte("r2")},
		{ID: "a3", Lane: "9:x", Record: []byte("r3")},
		{ID: "a4", Lane: "5:x", Record: []byte("r4"), Due: time.Now().Add(time.Hour)},
	}
	if err := s.Enqueue(ctx, "q", jobs); err != nil {
		t.Fatal(err)
	}
	got, err := s.Fetch(ctx, "q", "w1", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != "a3" {
		t.Fatalf("fetch: %+v", got)
	}
	lost, err := s.Ack(ctx, "q", "w1", []Done{{ID: "a3", Retention: time.Minute}, {ID: "a1"}, {ID: "a2"}})
	if err != nil || len(lost) != 0 {
		t.Fatal(err, lost)
	}
	c, err := s.Counts(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	if c.Scheduled != 1 || c.Succeeded != 1 || c.Pending != 0 || c.Processed != 3 {
		t.Fatalf("counts %+v", c)
	}
}

// Lanes that held work once cost a fetch nothing once drained: the store stops passing
// them, and a scheduled job promoted into a drained lane, or a job enqueued into one,
// is still found (the script names the lane it lacks and the call is made again).
func TestDrainedLanesLeaveTheFetch(t *testing.T) {
	ctx := context.Background()
	clock := testutil.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	rdb := redistest.Client(t)
	s := New(rdb, "t", clock.Now)
	const dead = 2000
	jobs := make([]NewJob, dead)
	for i := range jobs {
		jobs[i] = NewJob{ID: fmt.Sprintf("d%05d", i), Lane: fmt.Sprintf("5:dead%d", i), Record: []byte("r")}
	}
	if err := s.Enqueue(ctx, "q", jobs); err != nil {
		t.Fatal(err)
	}
	fetched := 0
	for {
		got, err := s.Fetch(ctx, "q", "w", MaxFetch, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		if fetched == 0 && len(got) != MaxFetch {
			t.Fatalf("a cold store's first fetch took %d jobs, want a full batch of %d", len(got), MaxFetch)
		}
		fetched += len(got)
	}
	if fetched != dead {
		t.Fatalf("fetched %d of %d", fetched, dead)
	}
	// what a fetch sends now: the arguments of its script call
	var args atomic.Int64
	rdb.AddHook(argCounter{&args})
	if _, err := s.Fetch(ctx, "q", "w", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := args.Load(); n > 2*laneFew+20 {
		t.Fatalf("after draining %d lanes a fetch sends %d arguments, want at most %d: drained lanes are still passed", dead, n, 2*laneFew+20)
	}
	// a drained lane comes back: enqueued into, and promoted into
	if err := s.Enqueue(ctx, "q", []NewJob{{ID: "x1", Lane: "5:dead7", Record: []byte("r")},
		{ID: "x2", Lane: "5:dead8", Record: []byte("r"), Due: clock.Now().Add(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	if n, _, err := s.Promote(ctx, "q", 10); err != nil || n != 1 {
		t.Fatalf("promoted %d, %v", n, err)
	}
	got, err := s.Fetch(ctx, "q", "w", 10, time.Minute)
	if err != nil || len(got) != 2 {
		t.Fatalf("fetched %+v, %v; want both jobs of drained lanes", got, err)
	}
}

// argCounter is a go-redis hook that records how many arguments the last script call
// sent.
type argCounter struct{ n *atomic.Int64 }

func (h argCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h argCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			h.n.Store(int64(len(cmd.Args())))
		}
		return next(ctx, cmd)
	}
}
func (h argCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestModesAreValidated: a mode that names none of the constants is refused with
// ErrBadMode before anything runs.
func TestModesAreValidated(t *testing.T) {
	ctx := context.Background()
	s := New(redistest.Client(t), "t", nil)
	if _, _, err := s.Cancel(ctx, "q", "id", "", CancelMode("erase")); !errors.Is(err, ErrBadMode) {
		t.Fatalf("Cancel with mode erase: %v, want ErrBadMode", err)
	}
	if _, err := s.Purge(ctx, "q", job.StateActive, PurgePage); !errors.Is(err, ErrBadMode) {
		t.Fatalf("Purge of active jobs: %v, want ErrBadMode", err)
	}
	how, _, err := s.Cancel(ctx, "q", "nope", "", CancelKeep)
	if how != CancelMissing || !errors.Is(err, ErrNotFound) {
		t.Fatalf("Cancel of an unknown job: %q %v", how, err)
	}
}
