package conformance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

func reviewCases() []struct {
	name string
	fn   func(t *testing.T, b *bundle)
} {
	return []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"RequeueAllPastSuperseded", testRequeueAllPastSuperseded},
		{"RequeueAllPagesThroughTies", testRequeueAllTies},
		{"DeleteWaitingJobRemovesIt", testDeleteWaiting},
		{"RequeueNamedTwiceMovesOnce", testRequeueNamedTwice},
	}
}

// failJobs enqueues one job of task t per entry of keys (keyed when the entry is not
// ""), in that order, so that their ids sort in that order; fetches them and fails
// each for good at the clock's now. It returns their ids, in the order of keys.
func failJobs(t *testing.T, b *bundle, keys []string) []string {
	t.Helper()
	ids := make([]string, len(keys))
	for i, k := range keys {
		opts := []job.Option{job.MaxRetries(0)}
		if k != "" {
			opts = append(opts, job.Key(k))
		}
		ids[i] = enqueue(t, b, "t", opts...).ID
	}
	var fetched []string
	for len(fetched) < len(keys) {
		got := fetchIDs(t, b, "default", "w", 1000)
		if len(got) == 0 {
			t.Fatalf("fetched %d of %d jobs", len(fetched), len(keys))
		}
		fetched = append(fetched, got...)
	}
	for i, id := range ids {
		if fetched[i] != id {
			t.Fatalf("fetched %s at %d, want %s (creation order)", fetched[i], i, id)
		}
		ok, err := b.s.Fail(b.ctx, "default", "w", store.Failure{ID: id, Error: "x"})
		must(t, err)
		if !ok {
			t.Fatalf("failure of %s not recorded", id)
		}
	}
	return ids
}

// supersede enqueues a newer job under each key (a failed job releases its key), so
// that the failed keyed jobs cannot be requeued: they stay failed.
func supersede(t *testing.T, b *bundle, keys []string) {
	t.Helper()
	for _, k := range keys {
		if k != "" {
			if h := enqueue(t, b, "t", job.Key(k)); h.Existing {
				t.Fatalf("key %s still names its failed job", k)
			}
		}
	}
}

func keysOf(prefix string, n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return ks
}

// requeuedAll checks that a requeue-all moved exactly want (by id), left the
// superseded jobs failed and their newer jobs pending.
func requeuedAll(t *testing.T, b *bundle, superseded int, want ...string) {
	t.Helper()
	n, err := b.c.Requeue(b.ctx, "default")
	must(t, err)
	if n != len(want) {
		t.Fatalf("requeue-all moved %d jobs, want %d (the plain failures behind %d superseded keyed ones)", n, len(want), superseded)
	}
	for _, id := range want {
		if j, err := b.c.Job(b.ctx, "default", id); err != nil || j.State != job.StatePending || j.Attempt != 0 {
			t.Fatalf("job %s after requeue-all: %+v %v", id, j, err)
		}
	}
	if c := counts(t, b, "default"); c.Failed != int64(superseded) || c.Pending != int64(superseded+len(want)) {
		t.Fatalf("after requeue-all: failed %d (want the %d superseded), pending %d", c.Failed, superseded, c.Pending)
	}
	if n, err := b.c.Requeue(b.ctx, "default"); err != nil || n != 0 {
		t.Fatalf("a second requeue-all: %d %v", n, err)
	}
}

// testRequeueAllPastSuperseded: requeue-all pages on past the failed jobs it cannot
// move (keyed jobs whose key names a newer job), however many fail first.
func testRequeueAllPastSuperseded(t *testing.T, b *bundle) {
	keys := keysOf("k", 1001)
	failJobs(t, b, keys)
	b.clock.Advance(time.Millisecond)
	plain := failJobs(t, b, []string{""})
	supersede(t, b, keys)
	requeuedAll(t, b, 1001, plain...)
}

// testRequeueAllTies: failures of one millisecond are paged by id, also when the last
// job a page examined moved (it is gone from the failed set when the next page starts).
func testRequeueAllTies(t *testing.T, b *bundle) {
	keys := append(keysOf("a", 999), "") // the 1000th, the last of a first page, moves
	keys = append(keys, "b", "")         // the next page: one that stays, one that moves
	ids := failJobs(t, b, keys)
	supersede(t, b, keys)
	requeuedAll(t, b, 1000, ids[999], ids[1001])
}

// testDeleteWaiting: Delete of a pending or scheduled job removes it (it is not kept as
// canceled): record and side hashes, its schedule key; a listening waiter is told it
// was canceled, a later Wait finds nothing.
func testDeleteWaiting(t *testing.T, b *bundle) {
	k := b.s.Keys("default")
	// a scheduled retry, with an attempt, an error and a stack stored beside it
	s := enqueue(t, b, "t", job.Key("ks"), job.MaxRetries(3))
	fetchIDs(t, b, "default", "w", 1)
	_, err := b.s.Fail(b.ctx, "default", "w", store.Failure{ID: s.ID, Retry: true, Due: b.clock.Now().Add(time.Hour), Error: "boom", Stack: "stack"})
	must(t, err)
	if j, err := s.Job(b.ctx); err != nil || j.State != job.StateScheduled || j.Attempt != 1 {
		t.Fatalf("retry: %+v %v", j, err)
	}
	p := enqueue(t, b, "t", job.Key("kp"))

	waiter := queue.NewClient(b.s.Redis(), queue.Config{})
	defer waiter.Close()
	before := numSub(b, k.DoneChannel)
	done := make(chan error, 1)
	go func() { _, err := waiter.Handle("default", p.ID).Wait(b.ctx); done <- err }()
	// delete once the waiter is subscribed, so that it hears the event
	testutil.Eventually(t, 5*time.Second, "waiter subscribed", func() bool { return numSub(b, k.DoneChannel) > before })
	must(t, b.c.Delete(b.ctx, "default", p.ID))
	if err := <-done; !errors.Is(err, job.ErrCanceled) {
		t.Fatalf("a waiter of a deleted pending job: %v, want job.ErrCanceled", err)
	}
	how, id, err := b.s.Cancel(b.ctx, "default", s.ID, "", "delete")
	must(t, err)
	if how != "deleted" || id != s.ID {
		t.Fatalf("delete of a scheduled job: how %q id %q, want deleted %s", how, id, s.ID)
	}

	for _, h := range []*queue.Handle{p, s} {
		if _, err := h.Job(b.ctx); !errors.Is(err, job.ErrNotFound) {
			t.Fatalf("deleted job %s: %v, want job.ErrNotFound", h.ID, err)
		}
		for _, hash := range []string{k.Records, k.Attempts, k.Errors, k.Stacks, k.Timings, k.JobKeys, k.Stops} {
			if ok, err := b.s.Redis().HExists(b.ctx, hash, h.ID).Result(); err != nil || ok {
				t.Fatalf("deleted job %s left in %s: %v %v", h.ID, hash, ok, err)
			}
		}
		if _, err := h.Wait(b.ctx); !errors.Is(err, job.ErrNotFound) {
			t.Fatalf("a Wait begun after the delete of %s: %v, want job.ErrNotFound", h.ID, err)
		}
	}
	if n, err := b.s.Redis().ZCard(b.ctx, k.Canceled).Result(); err != nil || n != 0 {
		t.Fatalf("deleted jobs kept in the canceled set: %d %v", n, err)
	}
	if c := counts(t, b, "default"); c.Pending != 0 || c.Scheduled != 0 || c.Canceled != 0 {
		t.Fatalf("counts after delete %+v", c)
	}
	for _, key := range []string{"kp", "ks"} {
		if _, err := b.c.JobByKey(b.ctx, "default", key); !errors.Is(err, job.ErrNotFound) {
			t.Fatalf("key %s still taken after delete: %v", key, err)
		}
		if h := enqueue(t, b, "t", job.Key(key)); h.Existing {
			t.Fatalf("key %s kept a deleted job", key)
		}
	}
	// Cancel still keeps the job, as canceled
	must(t, b.c.CancelKey(b.ctx, "default", "kp"))
	if c := counts(t, b, "default"); c.Canceled != 1 || c.Pending != 1 {
		t.Fatalf("counts after cancel %+v", c)
	}
}

// testRequeueNamedTwice: an id named twice is one job requeued, counted once.
func testRequeueNamedTwice(t *testing.T, b *bundle) {
	ids := failJobs(t, b, []string{""})
	n, err := b.c.Requeue(b.ctx, "default", ids[0], ids[0])
	must(t, err)
	if c := counts(t, b, "default"); n != 1 || c.Pending != 1 || c.Failed != 0 {
		t.Fatalf("requeue of one failed job named twice: moved %d, counts %+v; want 1 moved, 1 pending", n, c)
	}
}
