package conformance

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

func scheduleCases() []struct {
	name string
	fn   func(t *testing.T, b *bundle)
} {
	return []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"KeyedScheduleReplaceKeepCancel", testKeyedSchedule},
		{"KeyedPendingReplaced", testKeyedPending},
		{"KeyReleasedWhenJobEnds", testKeyReleased},
		{"UpcomingByTimeRange", testUpcoming},
		{"ConcurrentPromotersMoveEachJobOnce", testConcurrentPromote},
		{"PayloadLimit", testPayloadLimit},
	}
}

// The seed scenario: an employee punches in, an automatic punch-out is scheduled 24 h
// after the shift starts, keyed by the employee; punching in again moves it; punching
// out by hand cancels it.
func testKeyedSchedule(t *testing.T, b *bundle) {
	key := "auto-punch-out:employee:42"
	first := enqueue(t, b, "punch-out", job.Key(key), job.In(24*time.Hour))
	second := enqueue(t, b, "punch-out", job.Key(key), job.In(25*time.Hour))
	if first.ID == second.ID || second.Existing {
		t.Fatal("the second schedule did not replace the first")
	}
	if _, err := first.Job(b.ctx); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("replaced job still there: %v", err)
	}
	j, err := b.c.JobByKey(b.ctx, "default", key)
	must(t, err)
	if j.ID != second.ID || j.State != job.StateScheduled || !j.DueAt.Equal(b.clock.Now().Add(25*time.Hour)) || j.Options.Key != key {
		t.Fatalf("by key: %+v", j)
	}
	kept := enqueue(t, b, "punch-out", job.Key(key), job.In(time.Hour), job.KeepExisting())
	if !kept.Existing || kept.ID != second.ID {
		t.Fatalf("keep policy: %+v", kept)
	}
	if c := counts(t, b, "default"); c.Scheduled != 1 {
		t.Fatalf("scheduled %d, want 1", c.Scheduled)
	}
	must(t, b.c.CancelKey(b.ctx, "default", key))
	if err := b.c.CancelKey(b.ctx, "default", key); !errors.Is(err, job.ErrNotFound) || !contains(err.Error(), key) {
		t.Fatalf("cancel of an unknown key: %v", err)
	}
	if _, err := b.c.JobByKey(b.ctx, "default", key); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("lookup after cancel: %v", err)
	}
	if _, err := b.c.EnqueueByName(b.ctx, "t", nil, job.Key("")); !errors.Is(err, job.ErrInvalidOption) {
		t.Fatalf("empty key: %v", err)
	}
}

func testKeyedPending(t *testing.T, b *bundle) {
	a := enqueue(t, b, "sync", job.Key("sync:tenant:7"))
	b.clock.Advance(time.Millisecond)
	other := enqueue(t, b, "sync")
	b.clock.Advance(time.Millisecond)
	c := enqueue(t, b, "sync", job.Key("sync:tenant:7"), job.Priority(9))
	if _, err := a.Job(b.ctx); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("replaced pending job still there: %v", err)
	}
	equal(t, "pending after the replacement", fetchIDs(t, b, "default", "w", 10), []string{c.ID, other.ID})
}

func testKeyReleased(t *testing.T, b *bundle) {
	h := enqueue(t, b, "t", job.Key("once"))
	got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
	must(t, err)
	// running: a new job under the key is a new job, not a replacement of the running one
	again := enqueue(t, b, "t", job.Key("once"))
	if again.ID == h.ID || again.Existing {
		t.Fatal("a running job was treated as waiting")
	}
	_, err = b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: got[0].ID, Started: got[0].At, Key: "once", Retention: time.Minute}})
	must(t, err)
	j, err := b.c.JobByKey(b.ctx, "default", "once")
	must(t, err) // the key now names the newer job, which the older one's end leaves alone
	if j.ID != again.ID {
		t.Fatalf("key names %s, want %s", j.ID, again.ID)
	}
	got, err = b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
	must(t, err)
	_, err = b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: got[0].ID, Started: got[0].At, Key: "once"}})
	must(t, err)
	if _, err := b.c.JobByKey(b.ctx, "default", "once"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("key not released: %v", err)
	}
}

func testUpcoming(t *testing.T, b *bundle) {
	now := b.clock.Now()
	var ids []string
	for _, d := range []time.Duration{3 * time.Hour, time.Hour, 48 * time.Hour, 2 * time.Hour} {
		ids = append(ids, enqueue(t, b, "t", job.In(d)).ID)
	}
	js, err := b.c.Upcoming(b.ctx, "default", now, now.Add(24*time.Hour), 10)
	must(t, err)
	var got []string
	for _, j := range js {
		got = append(got, j.ID)
	}
	equal(t, "due within a day, earliest first", got, []string{ids[1], ids[3], ids[0]})
	js, err = b.c.Upcoming(b.ctx, "default", now, now.Add(24*time.Hour), 1)
	must(t, err)
	if len(js) != 1 || js[0].ID != ids[1] {
		t.Fatalf("limit: %v", js)
	}
}

func testConcurrentPromote(t *testing.T, b *bundle) {
	reqs := make([]queue.Request, 3000)
	for i := range reqs {
		reqs[i] = queue.Request{Task: fmt.Sprintf("t%d", i%3), Options: []job.Option{job.In(time.Duration(1+i%50) * time.Second)}}
	}
	_, err := b.c.EnqueueBatch(b.ctx, reqs)
	must(t, err)
	b.clock.Advance(time.Minute)
	var wg sync.WaitGroup
	var moved atomic.Int64
	for p := 0; p < 4; p++ { // four promoters, as four workers would run them
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := store.New(b.s.Redis(), b.s.Namespace(), b.clock.Now)
			for {
				n, _, err := s.Promote(b.ctx, "default", 100)
				if err != nil {
					t.Error(err)
					return
				}
				moved.Add(int64(n))
				if n == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if c := counts(t, b, "default"); moved.Load() != 3000 || c.Pending != 3000 || c.Scheduled != 0 {
		t.Fatalf("moved %d, counts %+v", moved.Load(), c)
	}
}

func testPayloadLimit(t *testing.T, b *bundle) {
	c := queue.NewClient(b.s.Redis(), queue.Config{MaxPayload: 1024})
	defer c.Close()
	big, _ := job.EncodeArgs(strings.Repeat("x", 2000))
	_, err := c.EnqueueRaw(b.ctx, "t", big, job.In(time.Hour))
	if !errors.Is(err, job.ErrBadPayload) || !contains(err.Error(), "1024 byte limit") {
		t.Fatalf("oversized payload: %v", err)
	}
	if n := counts(t, b, "default"); n.Scheduled != 0 {
		t.Fatal("an oversized job was stored")
	}
}

func scheduleFixCases() []struct {
	name string
	fn   func(t *testing.T, b *bundle)
} {
	return []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"SupersededRetryDropped", testSupersededRetry},
		{"SupersededHandBackAndReclaimDropped", testSupersededRequeue},
		{"RequeueFailedKeyed", testRequeueFailedKeyed},
		{"PurgeReleasesKeys", testPurgeReleasesKeys},
		{"ConcurrentKeyedEnqueues", testConcurrentKeyed},
	}
}

// A running keyed job whose key got a newer job is dropped when it would retry: two
// automatic punch-outs must never both wait.
func testSupersededRetry(t *testing.T, b *bundle) {
	old := enqueue(t, b, "punch-out", job.Key("k"), job.MaxRetries(3))
	got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
	must(t, err)
	newer := enqueue(t, b, "punch-out", job.Key("k"), job.In(time.Hour))
	ok, err := b.s.Fail(b.ctx, "default", "w", store.Failure{ID: got[0].ID, Retry: true, Due: b.clock.Now().Add(time.Second), Error: "flaky"})
	must(t, err)
	if !ok {
		t.Fatal("failure not recorded")
	}
	if _, err := old.Job(b.ctx); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("the superseded job came back: %v", err)
	}
	if c := counts(t, b, "default"); c.Scheduled != 1 {
		t.Fatalf("scheduled %d, want only the newer job", c.Scheduled)
	}
	must(t, b.c.CancelKey(b.ctx, "default", "k"))
	if c := counts(t, b, "default"); c.Scheduled != 0 || c.Pending != 0 {
		t.Fatalf("after CancelKey %+v", c)
	}
	isCanceled(t, b, newer.ID)
}

func testSupersededRequeue(t *testing.T, b *bundle) {
	for _, mode := range []string{"handback", "expired"} {
		enqueue(t, b, "t", job.Key("k-"+mode))
		got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Second)
		must(t, err)
		enqueue(t, b, "t", job.Key("k-"+mode)) // pending, under the same key
		if mode == "handback" {
			_, err = b.s.HandBack(b.ctx, "default", "w", leases(got[0].ID))
		} else {
			b.clock.Advance(2 * time.Second)
			_, _, err = b.s.ReclaimExpired(b.ctx, "default", "gone")
		}
		must(t, err)
		if _, err := b.c.Job(b.ctx, "default", got[0].ID); !errors.Is(err, job.ErrNotFound) {
			t.Fatalf("%s: the superseded job came back: %v", mode, err)
		}
		ids := fetchIDs(t, b, "default", "w2", 10)
		if len(ids) != 1 {
			t.Fatalf("%s: %d jobs waited under one key", mode, len(ids))
		}
	}
}

func testRequeueFailedKeyed(t *testing.T, b *bundle) {
	old := enqueue(t, b, "t", job.Key("k"), job.MaxRetries(0))
	got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
	must(t, err)
	_, err = b.s.Fail(b.ctx, "default", "w", store.Failure{ID: got[0].ID, Error: "x"})
	must(t, err)
	newer := enqueue(t, b, "t", job.Key("k"))
	n, err := b.c.Requeue(b.ctx, "default", old.ID)
	must(t, err)
	if n != 0 {
		t.Fatal("a failed job was requeued beside the newer job under its key")
	}
	must(t, b.c.CancelKey(b.ctx, "default", "k")) // the newer one goes; the key is free
	isCanceled(t, b, newer.ID)
	n, err = b.c.Requeue(b.ctx, "default", old.ID)
	must(t, err)
	j, err := b.c.JobByKey(b.ctx, "default", "k")
	must(t, err)
	if n != 1 || j.ID != old.ID || j.State != job.StatePending {
		t.Fatalf("requeued %d; key names %+v", n, j)
	}
}

func testPurgeReleasesKeys(t *testing.T, b *bundle) {
	for i := 0; i < 5; i++ {
		enqueue(t, b, "t", job.Key(fmt.Sprintf("s%d", i)), job.In(time.Hour))
		enqueue(t, b, "t", job.Key(fmt.Sprintf("p%d", i)))
	}
	_, err := b.c.Purge(b.ctx, "default", job.StateScheduled, nil)
	must(t, err)
	_, err = b.c.Purge(b.ctx, "default", job.StatePending, nil)
	must(t, err)
	k := b.s.Keys("default")
	if n, _ := b.s.Redis().HLen(b.ctx, k.SchedKeys).Result(); n != 0 {
		t.Fatalf("%d keys left after purge", n)
	}
	if n, _ := b.s.Redis().HLen(b.ctx, k.JobKeys).Result(); n != 0 {
		t.Fatalf("%d job keys left after purge", n)
	}
	if _, err := b.c.JobByKey(b.ctx, "default", "s1"); !errors.Is(err, job.ErrNotFound) || !contains(err.Error(), `"s1"`) {
		t.Fatalf("lookup after purge: %v", err)
	}
}

func testConcurrentKeyed(t *testing.T, b *bundle) {
	var wg sync.WaitGroup
	var failures atomic.Int32
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				if _, err := b.c.EnqueueByName(b.ctx, "t", nil, job.Key("hot"), job.In(time.Duration(1+i)*time.Minute)); err != nil {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of 480 keyed enqueues failed", f)
	}
	if c := counts(t, b, "default"); c.Scheduled != 1 {
		t.Fatalf("%d jobs wait under one key", c.Scheduled)
	}
}
