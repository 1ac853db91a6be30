package worker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// logTap is a logger that remembers the messages logged, for tests that must wait until
// the worker has acted on something that leaves no other trace.
type logTap struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logTap) Enabled(context.Context, slog.Level) bool { return true }
func (l *logTap) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logTap) WithGroup(string) slog.Handler            { return l }
func (l *logTap) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}

// saw reports whether a message containing sub was logged.
func (l *logTap) saw(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.msgs {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

// takeBack takes every lease of queue back as a reaper would once they expired (a
// store whose clock is an hour ahead), and reports how many it moved.
func takeBack(t *testing.T, e *env, queueName string) int {
	t.Helper()
	ahead := store.New(e.rdb, "", func() time.Time { return time.Now().Add(time.Hour) })
	n, _, err := ahead.ReclaimExpired(e.ctx, queueName, "lease expired")
	must(t, err)
	return n
}

// One worker, two slots: the lease of a running job is taken back (its renewals failed
// through an outage longer than the lease), and the same worker fetches the job again.
// The first run's context must be canceled, its late outcome refused, and the second
// run's lease kept and renewed, so the job is recorded once, from the second run.
func TestRefetchAfterLostLeaseKeepsRunsApart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lateErr error // what the first run returns after its lease is lost
		refused string
	}{
		{"late failure", errors.New("late failure"), "job failed"},
		{"late success", nil, "after their lease was taken back"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, queue.Config{})
			tap := &logTap{}
			var starts atomic.Int32
			var cause1 atomic.Value
			started1, started2 := make(chan struct{}), make(chan struct{})
			end1, end2 := make(chan struct{}), make(chan struct{})
			// enqueued before the worker starts, so that the first run is fetched, not
			// handed off: a hand-off's claim would race the take-back below
			h, err := e.c.EnqueueByName(e.ctx, "t", nil, job.MaxRetries(3))
			must(t, err)
			start(t, e, worker.Config{Concurrency: 2, Lease: 600 * time.Millisecond, Logger: slog.New(tap)}, func(w *worker.Worker) {
				w.HandleFunc("t", func(ctx context.Context, j *job.Job) (any, error) {
					switch starts.Add(1) {
					case 1:
						close(started1)
						<-ctx.Done()
						cause1.Store(context.Cause(ctx))
						<-end1
						return nil, tc.lateErr
					case 2:
						close(started2)
						<-end2
						return nil, nil
					}
					return nil, errors.New("a third run")
				})
			})
			<-started1
			if n := takeBack(t, e, "default"); n != 1 {
				t.Fatalf("took back %d leases", n)
			}
			<-started2 // the same worker fetched it again
			testutil.Eventually(t, 10*time.Second, "the first run's context canceled for its lost lease", func() bool {
				c, _ := cause1.Load().(error)
				return errors.Is(c, job.ErrLeaseExpired)
			})
			k := clientstore.Of(e.c).Keys("default")
			before, err := e.rdb.ZScore(e.ctx, k.Active, h.ID).Result()
			must(t, err)
			close(end1)
			// (when the job came back to this worker within the millisecond its first
			// lease began, both leases would look alike to Redis: the worker drops the
			// first run's outcome itself)
			testutil.Eventually(t, 10*time.Second, "the first run's outcome handled", func() bool {
				return tap.saw(tc.refused) || tap.saw("outcome dropped")
			})
			// the second run's lease is still held and renewed after the first run ended
			testutil.Eventually(t, 10*time.Second, "the second run's lease renewed", func() bool {
				s, err := e.rdb.ZScore(e.ctx, k.Active, h.ID).Result()
				return err == nil && s > before+100
			})
			if st, _ := h.State(e.ctx); st != job.StateActive {
				t.Fatalf("after the first run's late outcome the job is %s, want active (its second run runs)", st)
			}
			close(end2)
			j := waitState(t, e, h, job.StateSucceeded)
			if n := starts.Load(); n != 2 || j.Attempt != 2 {
				t.Fatalf("started %d times, attempt %d; want 2 and 2", n, j.Attempt)
			}
		})
	}
}

// An idle worker with a short lease is handed a job and dies; the reaper takes the job
// back. A worker with a long lease then fetches the job and goes idle: it must not start
// the job a second time from the dead worker's ready entry.
func TestStaleHandOffRunsOnce(t *testing.T) {
	e := newEnv(t, queue.Config{})
	s := clientstore.Of(e.c)
	must(t, s.MarkIdle(e.ctx, []string{"default"}, "dead", time.Now().Add(time.Minute), 300*time.Millisecond))
	h, err := e.c.EnqueueByName(e.ctx, "t", nil)
	must(t, err)
	if st, _ := h.State(e.ctx); st != job.StateActive {
		t.Fatalf("not handed off: %s", st)
	}
	if n := takeBack(t, e, "default"); n != 1 {
		t.Fatalf("took back %d", n)
	}
	var running, most, runs atomic.Int32
	release := make(chan struct{})
	start(t, e, worker.Config{Concurrency: 2, Lease: 30 * time.Second}, func(w *worker.Worker) {
		w.HandleFunc("t", func(ctx context.Context, j *job.Job) (any, error) {
			runs.Add(1)
			n := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-release
			return nil, nil
		})
	})
	k := s.Keys("default")
	testutil.Eventually(t, 10*time.Second, "the job running, the ready list empty, the worker blocked waiting", func() bool {
		clients, _ := e.rdb.ClientList(e.ctx).Result()
		n, _ := e.rdb.LLen(e.ctx, k.Ready).Result()
		return runs.Load() >= 1 && n == 0 && strings.Contains(clients, "cmd=blpop")
	})
	close(release)
	j := waitState(t, e, h, job.StateSucceeded)
	if runs.Load() != 1 || most.Load() != 1 || j.Attempt != 1 {
		t.Fatalf("ran %d times (%d at once), attempt %d; want once, attempt 1", runs.Load(), most.Load(), j.Attempt)
	}
}

// A notice of a newly scheduled job published while the promoter's subscription is
// down is lost; the promoter must promote once it has subscribed again, not wait for
// its timer (an hour with nothing scheduled).
func TestPromoterCatchesUpAfterResubscribing(t *testing.T) {
	e := newEnv(t, queue.Config{})
	// the worker runs as its own Redis user, so that its channel permissions can be
	// taken away for a while: Redis then drops its subscription and refuses a new one,
	// and what is published meanwhile reaches nobody
	must(t, e.rdb.Do(e.ctx, "ACL", "SETUSER", "promoter", "on", ">pw", "~*", "&*", "+@all").Err())
	t.Cleanup(func() { e.rdb.Do(context.Background(), "ACL", "DELUSER", "promoter") })
	wrdb := redis.NewClient(&redis.Options{Addr: e.rdb.Options().Addr, Username: "promoter", Password: "pw"})
	t.Cleanup(func() { _ = wrdb.Close() })
	wc := queue.NewClient(wrdb, queue.Config{Logger: quiet})
	t.Cleanup(func() { _ = wc.Close() })
	var ran atomic.Int32
	w, err := worker.New(wc, worker.Config{Logger: quiet})
	must(t, err)
	w.HandleFunc("t", func(ctx context.Context, j *job.Job) (any, error) { ran.Add(1); return nil, nil })
	must(t, w.Start(e.ctx))
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	channel := clientstore.Of(e.c).Keys("default").SchedChannel
	testutil.Eventually(t, 10*time.Second, "promoter subscribed", func() bool { return numSub(t, e, channel) == 1 })

	must(t, e.rdb.Do(e.ctx, "ACL", "SETUSER", "promoter", "resetchannels").Err())
	testutil.Eventually(t, 10*time.Second, "subscription dropped", func() bool { return numSub(t, e, channel) == 0 })
	h, err := e.c.EnqueueByName(e.ctx, "t", nil, job.In(50*time.Millisecond)) // its notice reaches nobody
	must(t, err)
	must(t, e.rdb.Do(e.ctx, "ACL", "SETUSER", "promoter", "allchannels").Err())
	// the refused resubscription left its connection up but subscribed to nothing:
	// drop the worker's connections so that it connects and subscribes afresh
	must(t, e.rdb.Do(e.ctx, "CLIENT", "KILL", "USER", "promoter").Err())
	testutil.Eventually(t, 10*time.Second, "promoter subscribed again", func() bool { return numSub(t, e, channel) == 1 })
	waitState(t, e, h, job.StateSucceeded)
	if ran.Load() != 1 {
		t.Fatalf("ran %d times", ran.Load())
	}
}

// Stop while Start is still on its way (its Redis round trips) must neither panic nor
// leave the worker running: every try ends with the worker stopped and unregistered.
func TestStopDuringStart(t *testing.T) {
	e := newEnv(t, queue.Config{})
	for i := range 100 {
		w, err := worker.New(e.c, worker.Config{Logger: quiet, ID: fmt.Sprintf("w%d", i)})
		must(t, err)
		w.HandleFunc("t", func(ctx context.Context, j *job.Job) (any, error) { return nil, nil })
		started := make(chan error, 1)
		go func() { started <- w.Start(e.ctx) }()
		stopped := make(chan error, 1)
		go func() { stopped <- w.Stop(context.Background()) }()
		must(t, <-started)
		must(t, <-stopped)
		must(t, w.Stop(context.Background())) // a Stop that came before Start began did nothing
	}
	ws, err := e.c.Workers(e.ctx)
	must(t, err)
	if len(ws) != 0 {
		t.Fatalf("%d workers still registered after Start and Stop raced", len(ws))
	}
}

// The job comes back to the worker that runs it under a lease of the same start ms
// (the clock of leases stands still here, as it may within one millisecond): Redis
// cannot tell the two leases apart, so the worker must. The first run is canceled at
// once for its lost lease and its late outcome is dropped; the second run's is
// recorded.
func TestRefetchWithinTheSameMillisecond(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC))
	e := newEnv(t, queue.Config{Now: clock.Now})
	tap := &logTap{}
	var starts atomic.Int32
	started1, started2, end1 := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var cause1 atomic.Value
	h, err := e.c.EnqueueByName(e.ctx, "t", nil, job.MaxRetries(3))
	must(t, err)
	t.Cleanup(func() {
		select {
		case <-end1:
		default:
			close(end1)
		}
	})
	start(t, e, worker.Config{Concurrency: 2, Lease: time.Hour, Logger: slog.New(tap)}, func(w *worker.Worker) {
		w.HandleFunc("t", func(ctx context.Context, j *job.Job) (any, error) {
			switch starts.Add(1) {
			case 1:
				close(started1)
				<-ctx.Done()
				cause1.Store(context.Cause(ctx))
				<-end1
				return "first", nil
			case 2:
				close(started2)
				return "second", nil
			}
			return nil, errors.New("a third run")
		})
	})
	<-started1
	// the reaper of a store whose clock is past the lease: the job goes back to pending
	ahead := store.New(e.rdb, "", func() time.Time { return clock.Now().Add(2 * time.Hour) })
	if n, _, err := ahead.ReclaimExpired(e.ctx, "default", "lease expired"); err != nil || n != 1 {
		close(end1)
		t.Fatalf("took back %d leases (%v)", n, err)
	}
	<-started2
	testutil.Eventually(t, 10*time.Second, "the first run canceled for its lost lease", func() bool {
		c, _ := cause1.Load().(error)
		return errors.Is(c, job.ErrLeaseExpired)
	})
	j := waitState(t, e, h, job.StateSucceeded)
	close(end1)
	testutil.Eventually(t, 10*time.Second, "the first run's outcome dropped", func() bool { return tap.saw("outcome dropped") })
	out, err := queue.WaitResult[string](e.ctx, h)
	must(t, err)
	if out != "second" || j.Attempt != 2 || starts.Load() != 2 {
		t.Fatalf("result %q, attempt %d, %d starts; want the second run's, 2, 2", out, j.Attempt, starts.Load())
	}
}
