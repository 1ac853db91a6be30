package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking/fairshare"
	"github.com/redis/go-redis/v9"
)

// Backend gives each test a client on an empty database.
type Backend func(t *testing.T) redis.UniversalClient

// bundle is what each case works with.
type bundle struct {
	ctx   context.Context
	clock *testutil.Clock
	c     *queue.Client
	s     *store.Store
}

func setup(t *testing.T, b Backend) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	clock := testutil.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	c := queue.NewClient(b(t), queue.Config{Now: clock.Now})
	t.Cleanup(func() { _ = c.Close() })
	return &bundle{ctx: ctx, clock: clock, c: c, s: clientstore.Of(c)}
}

// Run runs every case against backend.
func Run(t *testing.T, backend Backend) {
	cases := []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"FIFOInsideBand", testFIFO},
		{"FIFOWithinOneMillisecond", testFIFOSameMs},
		{"PriorityBandsStrict", testPriorityBands},
		{"FetchBatchKeepsGlobalOrder", testBatchOrder},
		{"BulkEnqueue", testBulk},
		{"DelayedPromotedWhenDue", testDelayed},
		{"RetryBackoffThenFailedThenRequeue", testRetry},
		{"CancelAndDelete", testCancel},
		{"StopRunningJob", testStop},
		{"CanceledKeptWithinCap", testCanceledCap},
		{"RequeueAllMovesEachOnce", testRequeueAllOnce},
		{"ExpiredLeaseReclaimed", testReclaim},
		{"HandBackGoesFirst", testHandBack},
		{"AckNeedsOwnership", testOwnership},
		{"PauseResume", testPause},
		{"Purge", testPurge},
		{"WaitWithoutPolling", testWait},
		{"RetentionAndTrim", testRetention},
		{"BadInput", testBadInput},
		{"KeysShareHashTag", testHashTag},
		{"StaleLaneListLosesNothing", testStaleLanes},
		{"HugeFetchIsCapped", testHugeFetch},
		{"WaitOnGoneJobs", testWaitGone},
		{"PurgeSeesNewLanes", testPurgeNewLane},
		{"UnclaimedHandOffCostsNoAttempt", testUnclaimedHandOff},
		{"ActivityByMinute", testActivity},
		{"TrimIdleQueue", testTrimIdle},
	}
	cases = append(cases, rankingCases()...)
	cases = append(cases, leaseCases()...)
	cases = append(cases, scheduleCases()...)
	cases = append(cases, scheduleFixCases()...)
	cases = append(cases, reviewCases()...)
	cases = append(cases, beatCases()...)
	cases = append(cases, numericsCases()...)
	cases = append(cases, fairCases()...)
	cases = append(cases, limitCases()...)
	cases = append(cases, limitEdgeCases()...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, setup(t, backend)) })
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func enqueue(t *testing.T, b *bundle, task string, opts ...job.Option) *queue.Handle {
	t.Helper()
	h, err := b.c.EnqueueByName(b.ctx, task, nil, opts...)
	must(t, err)
	return h
}

func fetchIDs(t *testing.T, b *bundle, q, worker string, n int) []string {
	t.Helper()
	got, err := b.s.Fetch(b.ctx, q, worker, n, time.Minute)
	must(t, err)
	ids := make([]string, len(got))
	for i, f := range got {
		ids[i] = f.ID
	}
	return ids
}

// listedIDs lists the ids of default's first 100 jobs in state.
func listedIDs(t *testing.T, b *bundle, state job.State) []string {
	t.Helper()
	js, err := b.c.List(b.ctx, "default", state, 0, 100)
	must(t, err)
	ids := make([]string, len(js))
	for i, j := range js {
		ids[i] = j.ID
	}
	return ids
}

// leases names any lease of the worker for each id (a zero start).
func leases(ids ...string) []store.Lease {
	out := make([]store.Lease, len(ids))
	for i, id := range ids {
		out[i] = store.Lease{ID: id}
	}
	return out
}

func leaseIDs(ls []store.Lease) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.ID)
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

func counts(t *testing.T, b *bundle, q string) queue.Counts {
	t.Helper()
	c, err := b.c.Counts(b.ctx, q)
	must(t, err)
	return c
}

func testFIFO(t *testing.T, b *bundle) {
	var want []string
	for i := 0; i < 5; i++ {
		task := []string{"a", "b", "c"}[i%3]
		want = append(want, enqueue(t, b, task).ID)
		b.clock.Advance(time.Millisecond)
	}
	equal(t, "listed in dequeue order", listedIDs(t, b, job.StatePending), want)
	var got []string
	for i := 0; i < 5; i++ {
		got = append(got, fetchIDs(t, b, "default", "w", 1)...)
	}
	equal(t, "fetched across task lanes in arrival order", got, want)
}

// testFIFOSameMs: jobs of several task lanes enqueued in the same millisecond (the
// clock stands still) come out in enqueue order, one fetch at a time or in one batch,
// and are listed so; not grouped by lane name.
func testFIFOSameMs(t *testing.T, b *bundle) {
	for _, batch := range []int{1, 12} {
		var want []string
		for i := range 12 {
			task := []string{"c", "b", "a"}[i%3] // lane names sort against enqueue order
			want = append(want, enqueue(t, b, task).ID)
		}
		equal(t, "listed in enqueue order", listedIDs(t, b, job.StatePending), want)
		var got []string
		for len(got) < len(want) {
			ids := fetchIDs(t, b, "default", "w", batch)
			if len(ids) == 0 {
				t.Fatal("nothing fetched")
			}
			got = append(got, ids...)
		}
		equal(t, fmt.Sprintf("fetched %d at a time in enqueue order", batch), got, want)
	}
}

func testPriorityBands(t *testing.T, b *bundle) {
	low := enqueue(t, b, "t", job.Priority(0)).ID
	mid := enqueue(t, b, "t").ID
	b.clock.Advance(time.Hour) // later arrivals of a higher band still go first
	high := enqueue(t, b, "u", job.Priority(9)).ID
	b.clock.Advance(time.Millisecond) // arrivals are ms: a same-ms tie across lanes goes by lane name
	high2 := enqueue(t, b, "t", job.Priority(9)).ID
	equal(t, "bands", fetchIDs(t, b, "default", "w", 10), []string{high, high2, mid, low})
}

func testBatchOrder(t *testing.T, b *bundle) {
	var want []string
	for i := 0; i < 30; i++ {
		want = append(want, enqueue(t, b, fmt.Sprintf("t%d", i%4)).ID)
		b.clock.Advance(time.Millisecond)
	}
	got := fetchIDs(t, b, "default", "w", 12)
	got = append(got, fetchIDs(t, b, "default", "w", 100)...)
	equal(t, "batched fetch keeps the global order", got, want)
}

func testBulk(t *testing.T, b *bundle) {
	reqs := make([]queue.Request, 2500) // crosses the 1000-job script batch
	for i := range reqs {
		p, _ := job.EncodeArgs(map[string]int{"i": i})
		reqs[i] = queue.Request{Task: "bulk", Payload: p}
	}
	hs, err := b.c.EnqueueBatch(b.ctx, reqs)
	must(t, err)
	if c := counts(t, b, "default"); c.Pending != 2500 {
		t.Fatalf("pending %d, want 2500", c.Pending)
	}
	got := fetchIDs(t, b, "default", "w", 3)
	equal(t, "bulk keeps order", got, []string{hs[0].ID, hs[1].ID, hs[2].ID})
	j, err := hs[2499].Job(b.ctx)
	must(t, err)
	var args map[string]int
	must(t, j.Decode(&args))
	if args["i"] != 2499 || j.State != job.StatePending {
		t.Fatalf("job %+v args %v", j, args)
	}
}

func testDelayed(t *testing.T, b *bundle) {
	later := enqueue(t, b, "t", job.In(time.Hour))
	at := enqueue(t, b, "t", job.At(b.clock.Now().Add(30*time.Minute)))
	past := enqueue(t, b, "t", job.At(b.clock.Now().Add(-time.Hour))) // in the past: now
	if st, _ := later.State(b.ctx); st != job.StateScheduled {
		t.Fatalf("state %s", st)
	}
	n, next, err := b.s.Promote(b.ctx, "default", 100)
	must(t, err)
	if n != 0 || !next.Equal(b.clock.Now().Add(30*time.Minute)) {
		t.Fatalf("promote before due moved %d, next %v", n, next)
	}
	equal(t, "only the past one is pending", fetchIDs(t, b, "default", "w", 10), []string{past.ID})
	b.clock.Advance(2 * time.Hour)
	n, next, err = b.s.Promote(b.ctx, "default", 100)
	must(t, err)
	if n != 2 || !next.IsZero() {
		t.Fatalf("promote after due moved %d, next %v", n, next)
	}
	equal(t, "due order", fetchIDs(t, b, "default", "w", 10), []string{at.ID, later.ID})
}

func testRetry(t *testing.T, b *bundle) {
	h := enqueue(t, b, "flaky", job.MaxRetries(1))
	fetchIDs(t, b, "default", "w", 1)
	due := b.clock.Now().Add(4 * time.Second)
	ok, err := b.s.Fail(b.ctx, "default", "w", store.Failure{ID: h.ID, Retry: true, Due: due, Error: "boom 1", Started: b.clock.Now()})
	must(t, err)
	if !ok {
		t.Fatal("fail not recorded")
	}
	j, err := h.Job(b.ctx)
	must(t, err)
	if j.State != job.StateScheduled || !j.DueAt.Equal(due) || j.Attempt != 1 || j.LastError != "boom 1" {
		t.Fatalf("after retry: %+v", j)
	}
	b.clock.Advance(4 * time.Second)
	_, _, err = b.s.Promote(b.ctx, "default", 10)
	must(t, err)
	got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].Attempts != 1 {
		t.Fatalf("refetch %+v", got)
	}
	_, err = b.s.Fail(b.ctx, "default", "w", store.Failure{ID: h.ID, Error: "boom 2", Stack: "stack", Started: b.clock.Now()})
	must(t, err)
	j, err = h.Job(b.ctx)
	must(t, err)
	if j.State != job.StateFailed || j.Attempt != 2 || j.LastError != "boom 2" || j.Stack != "stack" {
		t.Fatalf("after final failure: %+v", j)
	}
	if c := counts(t, b, "default"); c.Failed != 1 || c.FailedTotal != 1 || c.Retried != 1 {
		t.Fatalf("counts %+v", c)
	}
	n, err := b.c.Requeue(b.ctx, "default")
	must(t, err)
	if n != 1 {
		t.Fatalf("requeued %d", n)
	}
	got, err = b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].Attempts != 0 {
		t.Fatalf("requeued job gets fresh retries: %+v", got)
	}
}

func testCancel(t *testing.T, b *bundle) {
	p := enqueue(t, b, "t")
	s := enqueue(t, b, "t", job.In(time.Minute))
	a := enqueue(t, b, "t", job.Priority(9))
	fetchIDs(t, b, "default", "w", 1) // takes a (highest band)
	must(t, b.c.Cancel(b.ctx, "default", p.ID))
	must(t, b.c.Cancel(b.ctx, "default", s.ID))
	if err := b.c.Cancel(b.ctx, "default", a.ID); !errors.Is(err, queue.ErrJobActive) {
		t.Fatalf("cancel active: %v", err)
	}
	if err := b.c.Cancel(b.ctx, "default", "nope"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("cancel unknown: %v", err)
	}
	isCanceled(t, b, p.ID)
	isCanceled(t, b, s.ID)
	if c := counts(t, b, "default"); c.Pending != 0 || c.Scheduled != 0 || c.Active != 1 || c.Canceled != 2 {
		t.Fatalf("counts %+v", c)
	}
	if err := b.c.Cancel(b.ctx, "default", p.ID); !errors.Is(err, queue.ErrJobEnded) {
		t.Fatalf("cancel of a canceled job: %v", err)
	}
	got, err := b.c.List(b.ctx, "default", job.StateCanceled, 0, 10)
	must(t, err)
	if len(got) != 2 {
		t.Fatalf("listed %d canceled jobs, want 2", len(got))
	}
	if _, err := p.Wait(b.ctx); !errors.Is(err, job.ErrCanceled) { // a Wait begun later
		t.Fatalf("late wait on a canceled job: %v", err)
	}
	if n, err := b.c.Requeue(b.ctx, "default", p.ID); err != nil || n != 0 {
		t.Fatalf("requeue of a canceled job: %d %v", n, err)
	}
	must(t, b.c.Delete(b.ctx, "default", p.ID)) // a canceled job can be deleted
	if _, err := p.Job(b.ctx); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("deleted canceled job: %v", err)
	}
	// kept a day, then trimmed
	b.clock.Advance(25 * time.Hour)
	_, err = b.s.Trim(b.ctx, "default")
	must(t, err)
	if _, err := s.Job(b.ctx); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("a canceled job past a day: %v", err)
	}
	_, err = b.s.Fail(b.ctx, "default", "w", store.Failure{ID: a.ID, Error: "x"})
	must(t, err)
	if err := b.c.Cancel(b.ctx, "default", a.ID); !errors.Is(err, queue.ErrJobEnded) {
		t.Fatalf("cancel failed job: %v", err)
	}
	must(t, b.c.Delete(b.ctx, "default", a.ID))
	if c := counts(t, b, "default"); c.Failed != 0 {
		t.Fatalf("delete left %+v", c)
	}
}

func testStop(t *testing.T, b *bundle) {
	k := b.s.Keys("default")
	// a waiting job is canceled at once
	p := enqueue(t, b, "t")
	running, err := b.c.StopJob(b.ctx, "default", p.ID)
	must(t, err)
	if running {
		t.Fatal("stop of a pending job: reported running")
	}
	isCanceled(t, b, p.ID)

	// a running one: its worker is told on the stop channel and at renewal
	a := enqueue(t, b, "t", job.Key("k1"))
	fetchIDs(t, b, "default", "w", 1)
	sub := b.s.Redis().Subscribe(b.ctx, k.StopChannel)
	defer sub.Close()
	if _, err := sub.Receive(b.ctx); err != nil { // the subscription is live
		t.Fatal(err)
	}
	if err := b.c.Delete(b.ctx, "default", a.ID); !errors.Is(err, queue.ErrJobActive) {
		t.Fatalf("delete of a running job: %v", err)
	}
	for i := range 2 { // asking twice (by id, then by key) is no error, and notifies once
		if i == 0 {
			running, err = b.c.StopJob(b.ctx, "default", a.ID)
		} else {
			running, err = b.c.StopKey(b.ctx, "default", "k1")
		}
		must(t, err)
		if !running {
			t.Fatal("stop of a running job: not reported running")
		}
	}
	msg, err := sub.ReceiveMessage(b.ctx)
	must(t, err)
	if msg.Payload != a.ID {
		t.Fatalf("stop notice %q, want %q", msg.Payload, a.ID)
	}
	if j, err := a.Job(b.ctx); err != nil || j.State != job.StateActive {
		t.Fatalf("a running job asked to stop runs on until it returns: %+v %v", j, err)
	}
	rlost, rstop, err := b.s.RenewLeases(b.ctx, "default", "w", leases(a.ID), time.Minute)
	must(t, err)
	equal(t, "renewal lost", leaseIDs(rlost), nil)
	equal(t, "renewal stop", leaseIDs(rstop), []string{a.ID})
	// its failure, retries left or not, ends it canceled: Redis decides, whether or
	// not the worker heard of the stop in time
	if res, err := b.s.FailResult(b.ctx, "default", "other", store.Failure{ID: a.ID, Error: "x", Retry: true}); res != store.FailNotHeld || err != nil {
		t.Fatalf("failed by a worker not holding it: %v %v", res, err)
	}
	res, err := b.s.FailResult(b.ctx, "default", "w", store.Failure{ID: a.ID, Error: "context canceled", Retry: true, Due: b.clock.Now()})
	must(t, err)
	if res != store.FailStopped {
		t.Fatalf("failure of a job asked to stop: outcome %v, want stopped", res)
	}
	if j := isCanceled(t, b, a.ID); j.LastError != "context canceled" || j.FinishedAt.IsZero() || j.Attempt != 1 {
		t.Fatalf("a stopped job keeps the error it stopped on and its end: %+v", j)
	}
	if c := counts(t, b, "default"); c.Active != 0 || c.Failed != 0 || c.Succeeded != 0 {
		t.Fatalf("counts after stop %+v", c)
	}
	if n, _ := b.s.Redis().HLen(b.ctx, k.Stops).Result(); n != 0 {
		t.Fatalf("%d stop requests left", n)
	}
	// its schedule key is free again
	again, err := b.c.EnqueueByName(b.ctx, "t", nil, job.Key("k1"))
	must(t, err)
	if again.ID == a.ID {
		t.Fatal("key still names the stopped job")
	}
	must(t, b.c.Cancel(b.ctx, "default", again.ID))

	// a stop outlives the worker: an expired lease is not retried, and frees its key
	d := enqueue(t, b, "t", job.Key("k2"))
	got, err := b.s.Fetch(b.ctx, "default", "dead", 1, time.Second)
	must(t, err)
	equal(t, "fetched", []string{got[0].ID}, []string{d.ID})
	_, err = b.c.StopJob(b.ctx, "default", d.ID)
	must(t, err)
	b.clock.Advance(2 * time.Second)
	n, _, err := b.s.ReclaimExpired(b.ctx, "default", "lease expired")
	must(t, err)
	if n != 1 {
		t.Fatalf("reclaimed %d", n)
	}
	if j := isCanceled(t, b, d.ID); j.Attempt != 1 || j.LastError != "lease expired" { // a stopped job whose worker died
		t.Fatalf("reclaimed stopped job: attempt %d, error %q", j.Attempt, j.LastError)
	}
	if _, err := b.c.JobByKey(b.ctx, "default", "k2"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("the key of a stopped job is still taken: %v", err)
	}
	if c := counts(t, b, "default"); c.Pending != 0 || c.Active != 0 {
		t.Fatalf("counts after reclaim %+v", c)
	}
	// and a shutdown's hand-back does not put it back either
	hb := enqueue(t, b, "t")
	fetchIDs(t, b, "default", "w", 1)
	_, err = b.c.StopJob(b.ctx, "default", hb.ID)
	must(t, err)
	_, err = b.s.HandBack(b.ctx, "default", "w", leases(hb.ID))
	must(t, err)
	isCanceled(t, b, hb.ID) // a stopped job handed back
	if n, _ := b.s.Redis().HLen(b.ctx, k.Stops).Result(); n != 0 {
		t.Fatalf("%d stop requests left after reclaim and hand-back", n)
	}

	// an ended job cannot be stopped; a success asked to stop keeps its outcome
	e := enqueue(t, b, "t")
	fetchIDs(t, b, "default", "w", 1)
	_, err = b.c.StopJob(b.ctx, "default", e.ID)
	must(t, err)
	lost, err := b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: e.ID, Retention: time.Minute}})
	must(t, err)
	equal(t, "ack lost", lost, nil)
	_, err = b.s.Trim(b.ctx, "default") // the ack leaves a stop request that came too late
	must(t, err)
	if n, _ := b.s.Redis().HLen(b.ctx, k.Stops).Result(); n != 0 {
		t.Fatalf("trim left %d stop requests", n)
	}
	if _, err := b.c.StopJob(b.ctx, "default", e.ID); !errors.Is(err, queue.ErrJobEnded) {
		t.Fatalf("stop of an ended job: %v", err)
	}
	if st, _ := e.State(b.ctx); st != job.StateSucceeded {
		t.Fatalf("state %s", st)
	}
	if _, err := b.c.StopJob(b.ctx, "default", "nope"); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("stop of an unknown job: %v", err)
	}
	// canceled jobs can be purged
	n, err = b.c.Purge(b.ctx, "default", job.StateCanceled, nil)
	must(t, err)
	if c := counts(t, b, "default"); n != 5 || c.Canceled != 0 {
		t.Fatalf("purged %d canceled jobs, %d left", n, c.Canceled)
	}
}

// testRequeueAllOnce: requeueing every failed job takes those failed when it began; a
// job a live worker fails again in between is not taken a second time.
func testRequeueAllOnce(t *testing.T, b *bundle) {
	h := enqueue(t, b, "t", job.MaxRetries(0))
	fetchIDs(t, b, "default", "w", 1)
	_, err := b.s.Fail(b.ctx, "default", "w", store.Failure{ID: h.ID, Error: "x"})
	must(t, err)
	began := b.clock.Now()
	n, err := b.s.RequeueFailed(b.ctx, "default", nil, began)
	must(t, err)
	if n != 1 {
		t.Fatalf("requeued %d, want 1", n)
	}
	b.clock.Advance(5 * time.Millisecond) // a worker takes it and fails it again
	fetchIDs(t, b, "default", "w", 1)
	_, err = b.s.Fail(b.ctx, "default", "w", store.Failure{ID: h.ID, Error: "x"})
	must(t, err)
	if n, err := b.s.RequeueFailed(b.ctx, "default", nil, began); err != nil || n != 0 {
		t.Fatalf("the same requeue-all took a job failed after it began: %d %v", n, err)
	}
	if n, err := b.c.Requeue(b.ctx, "default"); err != nil || n != 1 {
		t.Fatalf("a new requeue-all: %d %v", n, err)
	}
}

func testCanceledCap(t *testing.T, b *bundle) {
	b.s.MaxCanceled = 2
	var hs []*queue.Handle
	for range 3 {
		h := enqueue(t, b, "t")
		must(t, b.c.Cancel(b.ctx, "default", h.ID))
		hs = append(hs, h)
		b.clock.Advance(time.Millisecond)
	}
	if c := counts(t, b, "default"); c.Canceled != 2 {
		t.Fatalf("%d canceled jobs kept, cap 2", c.Canceled)
	}
	if _, err := hs[0].Job(b.ctx); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("the oldest canceled job stays past the cap: %v", err)
	}
	isCanceled(t, b, hs[2].ID)
}

// isCanceled checks that job id is kept in state canceled, and returns it.
func isCanceled(t *testing.T, b *bundle, id string) *job.Job {
	t.Helper()
	j, err := b.c.Job(b.ctx, "default", id)
	if err != nil || j.State != job.StateCanceled {
		t.Fatalf("job %s: %+v %v, want it kept as canceled", id, j, err)
	}
	return j
}

func testReclaim(t *testing.T, b *bundle) {
	first := enqueue(t, b, "t")
	b.clock.Advance(time.Millisecond)
	second := enqueue(t, b, "t")
	got, err := b.s.Fetch(b.ctx, "default", "dead-worker", 1, time.Second)
	must(t, err)
	equal(t, "first out", []string{got[0].ID}, []string{first.ID})
	n, next, err := b.s.ReclaimExpired(b.ctx, "default", "lease expired")
	must(t, err)
	if n != 0 || !next.Equal(b.clock.Now().Add(time.Second)) {
		t.Fatalf("reclaimed %d before expiry, next %v", n, next)
	}
	b.clock.Advance(2 * time.Second)
	n, _, err = b.s.ReclaimExpired(b.ctx, "default", "lease expired")
	must(t, err)
	if n != 1 {
		t.Fatalf("reclaimed %d", n)
	}
	got, err = b.s.Fetch(b.ctx, "default", "w2", 2, time.Minute)
	must(t, err)
	if len(got) != 2 || got[0].ID != first.ID || got[0].Attempts != 1 || got[1].ID != second.ID {
		t.Fatalf("after reclaim: %+v", got)
	}
	j, err := first.Job(b.ctx)
	must(t, err)
	if j.LastError != "lease expired" || j.Worker != "w2" {
		t.Fatalf("job %+v", j)
	}
}

func testHandBack(t *testing.T, b *bundle) {
	first := enqueue(t, b, "t")
	b.clock.Advance(time.Millisecond)
	second := enqueue(t, b, "t")
	equal(t, "fetch", fetchIDs(t, b, "default", "w", 1), []string{first.ID})
	n, err := b.s.HandBack(b.ctx, "default", "other", leases(first.ID))
	must(t, err)
	if n != 0 {
		t.Fatal("handed back a job of another worker")
	}
	n, err = b.s.HandBack(b.ctx, "default", "w", leases(first.ID))
	must(t, err)
	if n != 1 {
		t.Fatalf("handed back %d", n)
	}
	got, err := b.s.Fetch(b.ctx, "default", "w", 2, time.Minute)
	must(t, err)
	if got[0].ID != first.ID || got[0].Attempts != 0 || got[1].ID != second.ID {
		t.Fatalf("hand-back: %+v", got)
	}
}

func testOwnership(t *testing.T, b *bundle) {
	h := enqueue(t, b, "t")
	fetchIDs(t, b, "default", "a", 1)
	lost, err := b.s.Ack(b.ctx, "default", "b", []store.Done{{ID: h.ID, Retention: time.Minute}})
	must(t, err)
	equal(t, "lost", lost, []string{h.ID})
	rlost, _, err := b.s.RenewLeases(b.ctx, "default", "b", leases(h.ID), time.Minute)
	must(t, err)
	equal(t, "renew by another", leaseIDs(rlost), []string{h.ID})
	lost, err = b.s.Ack(b.ctx, "default", "a", []store.Done{{ID: h.ID, Retention: time.Minute}})
	must(t, err)
	if len(lost) != 0 {
		t.Fatal(lost)
	}
	if st, _ := h.State(b.ctx); st != job.StateSucceeded {
		t.Fatalf("state %s", st)
	}
}

func testPause(t *testing.T, b *bundle) {
	enqueue(t, b, "t")
	must(t, b.c.Pause(b.ctx, "default"))
	if _, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute); !errors.Is(err, store.ErrPaused) {
		t.Fatalf("fetch on paused: %v", err)
	}
	if !counts(t, b, "default").Paused {
		t.Fatal("not shown paused")
	}
	must(t, b.c.Resume(b.ctx, "default"))
	if len(fetchIDs(t, b, "default", "w", 1)) != 1 {
		t.Fatal("resume")
	}
}

func testPurge(t *testing.T, b *bundle) {
	for i := 0; i < 2100; i++ {
		enqueue(t, b, fmt.Sprintf("t%d", i%3))
	}
	enqueue(t, b, "t", job.In(time.Hour))
	calls := 0
	n, err := b.c.Purge(b.ctx, "default", job.StatePending, func(int) { calls++ })
	must(t, err)
	if n != 2100 || calls < 3 {
		t.Fatalf("purged %d in %d steps", n, calls)
	}
	c := counts(t, b, "default")
	if c.Pending != 0 || c.Scheduled != 1 {
		t.Fatalf("after purge %+v", c)
	}
	if len(fetchIDs(t, b, "default", "w", 10)) != 0 {
		t.Fatal("fetched after purge")
	}
	if _, err := b.c.Purge(b.ctx, "default", job.StateActive, nil); err == nil {
		t.Fatal("purging active jobs must be refused")
	}
}

func testWait(t *testing.T, b *bundle) {
	h := enqueue(t, b, "t")
	res, _ := job.EncodeArgs("done!")
	go func() {
		// the consumer side, by hand: fetch and ack once Wait is listening
		for {
			got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
			if err != nil || len(got) == 1 {
				_, _ = b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: h.ID, Retention: time.Minute, Result: res}})
				return
			}
		}
	}()
	out, err := queue.WaitResult[string](b.ctx, h)
	must(t, err)
	if out != "done!" {
		t.Fatalf("result %q", out)
	}
	f := enqueue(t, b, "t")
	fetchIDs(t, b, "default", "w", 1)
	_, err = b.s.Fail(b.ctx, "default", "w", store.Failure{ID: f.ID, Error: "bad"})
	must(t, err)
	_, err = f.Wait(b.ctx)
	var fe *job.FailedError
	if !errors.As(err, &fe) || fe.Message != "bad" || !errors.Is(err, job.ErrJobFailed) {
		t.Fatalf("wait on failed: %v", err)
	}
	c := enqueue(t, b, "t", job.In(time.Hour))
	// a client of its own, so that its subscription shows this waiter has started (b.c
	// subscribed for the waits above already)
	waiter := queue.NewClient(b.s.Redis(), queue.Config{})
	defer waiter.Close()
	channel := b.s.Keys("default").DoneChannel
	before := numSub(b, channel)
	done := make(chan error, 1)
	go func() { _, err := waiter.Handle("default", c.ID).Wait(b.ctx); done <- err }()
	// cancel once the waiter is subscribed, so that it hears the event
	testutil.Eventually(t, 5*time.Second, "waiter subscribed", func() bool { return numSub(b, channel) > before })
	must(t, b.c.Cancel(b.ctx, "default", c.ID))
	if err := <-done; !errors.Is(err, job.ErrCanceled) {
		t.Fatalf("wait on canceled: %v", err)
	}
	short, cancel := context.WithTimeout(b.ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := enqueue(t, b, "t").Wait(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait timeout: %v", err)
	}
}

func testRetention(t *testing.T, b *bundle) {
	keep := enqueue(t, b, "t", job.Retention(time.Minute))
	gone := enqueue(t, b, "t", job.Retention(0))
	fetchIDs(t, b, "default", "w", 2)
	_, err := b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: keep.ID, Retention: time.Minute}, {ID: gone.ID}})
	must(t, err)
	if _, err := gone.Job(b.ctx); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("retention 0 kept the job: %v", err)
	}
	if st, err := keep.State(b.ctx); err != nil || st != job.StateSucceeded {
		t.Fatalf("kept job: %s %v", st, err)
	}
	b.clock.Advance(2 * time.Minute)
	b.s.TrimEvery = 1 // the next ack trims what has expired
	other := enqueue(t, b, "t")
	fetchIDs(t, b, "default", "w", 1)
	_, err = b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: other.ID, Retention: time.Minute}})
	must(t, err)
	if _, err := keep.Job(b.ctx); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("expired job not trimmed: %v", err)
	}
}

func testBadInput(t *testing.T, b *bundle) {
	cases := []struct {
		name string
		task string
		opts []job.Option
		want string
	}{
		{"priority 12", "t", []job.Option{job.Priority(12)}, "Priority=12"},
		{"negative retries", "t", []job.Option{job.MaxRetries(-1)}, "MaxRetries=-1"},
		{"empty task", "", nil, "Task"},
		{"bad queue", "t", []job.Option{job.Queue("a b")}, "Queue"},
		{"horizon", "t", []job.Option{job.In(11 * 365 * 24 * time.Hour)}, "In="},
		{"zero timeout", "t", []job.Option{job.Timeout(0)}, "Timeout"},
	}
	for _, tc := range cases {
		_, err := b.c.EnqueueByName(b.ctx, tc.task, nil, tc.opts...)
		if !errors.Is(err, job.ErrInvalidOption) || !contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want ErrInvalidOption naming %q", tc.name, err, tc.want)
		}
	}
	if _, err := b.c.EnqueueRaw(b.ctx, "t", []byte{0xc1}); !errors.Is(err, job.ErrBadPayload) {
		t.Errorf("bad msgpack: %v", err)
	}
	if _, err := b.c.EnqueueJSON(b.ctx, "t", []byte(`{"a":`)); !errors.Is(err, job.ErrBadPayload) {
		t.Errorf("bad json: %v", err)
	}
	// a batch with one bad request stores nothing
	_, err := b.c.EnqueueBatch(b.ctx, []queue.Request{{Task: "ok"}, {Task: "t", Options: []job.Option{job.Priority(10)}}})
	if err == nil || !contains(err.Error(), "request 1") {
		t.Errorf("batch error %v", err)
	}
	if c := counts(t, b, "default"); c.Pending != 0 {
		t.Errorf("bad batch stored %d jobs", c.Pending)
	}
}

func testHashTag(t *testing.T, b *bundle) {
	enqueue(t, b, "t", job.Queue("tagged"))
	enqueue(t, b, "t", job.Queue("tagged"), job.In(time.Hour))
	// and fair share's keys: a fair set, its key sets, the counts, configuration, use
	must(t, b.c.SetFairMode(b.ctx, "tagged", fairshare.ModeShare))
	must(t, b.c.SetFairTags(b.ctx, "tagged", "k", map[string]string{"plan": "gold"}))
	enqueue(t, b, "t", job.Queue("tagged"), job.FairKey("k"))
	enqueue(t, b, "t", job.Queue("tagged"), job.FairKey("k"))
	enqueue(t, b, "t", job.Queue("tagged"), job.FairKey("other"))
	// and the limits' settings and state
	must(t, b.s.SetLimit(b.ctx, "tagged", job.Limit{Scope: job.ScopeTask, Task: "t", MaxRunning: 5, Rate: job.Rate{Count: 100, Per: time.Second, Burst: 10}}))
	got, err := b.s.Fetch(b.ctx, "tagged", "w", 2, time.Minute)
	must(t, err)
	_, err = b.s.Ack(b.ctx, "tagged", "w", []store.Done{{ID: got[0].ID, Started: got[0].At, Fair: got[0].Fair, Sample: store.Sample{Task: "t", Ran: time.Millisecond}}})
	must(t, err)
	keys, err := b.s.Redis().Keys(b.ctx, "*").Result()
	must(t, err)
	for _, k := range keys {
		if k == "chronoq:queues" {
			continue
		}
		if !contains(k, "{tagged}") {
			t.Errorf("key %q lacks the queue's hash tag", k)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && (func() bool {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
		return false
	})())
}

func testStaleLanes(t *testing.T, b *bundle) {
	enqueue(t, b, "a")
	fetchIDs(t, b, "default", "w", 1) // the store now caches the lane list [a]
	x := enqueue(t, b, "a").ID
	b.clock.Advance(time.Millisecond)
	y := enqueue(t, b, "b").ID // a lane the cached list lacks
	got := fetchIDs(t, b, "default", "w", 10)
	got = append(got, fetchIDs(t, b, "default", "w", 10)...)
	equal(t, "both fetched, in order", got, []string{x, y})
	if c := counts(t, b, "default"); c.Active != 3 || c.Pending != 0 {
		t.Fatalf("counts %+v", c)
	}
}

func testHugeFetch(t *testing.T, b *bundle) {
	reqs := make([]queue.Request, 5000)
	for i := range reqs {
		reqs[i] = queue.Request{Task: "t"}
	}
	_, err := b.c.EnqueueBatch(b.ctx, reqs)
	must(t, err)
	if got := fetchIDs(t, b, "default", "w", 5000); len(got) != store.MaxFetch {
		t.Fatalf("fetched %d, want the cap %d", len(got), store.MaxFetch)
	}
	if c := counts(t, b, "default"); c.Pending != 4000 || c.Active != 1000 {
		t.Fatalf("counts %+v", c)
	}
}

func testWaitGone(t *testing.T, b *bundle) {
	if _, err := b.c.Handle("default", "no-such-id").Wait(b.ctx); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	h := enqueue(t, b, "t", job.Retention(0))
	fetchIDs(t, b, "default", "w", 1)
	_, err := b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: h.ID}})
	must(t, err)
	// it is gone; Wait may still have caught its success event (the client was
	// already listening on the queue): either answer is true, a hang is not
	if j, err := h.Wait(b.ctx); !errors.Is(err, job.ErrNotFound) && (err != nil || j.State != job.StateSucceeded) {
		t.Fatalf("ended with no retention before Wait: %v %v", j, err)
	}
	p := enqueue(t, b, "t")
	done := make(chan error, 1)
	go func() { _, err := p.Wait(b.ctx); done <- err }()
	testutil.Eventually(t, 5*time.Second, "waiter subscribed", func() bool { return numSub(b, b.s.Keys("default").DoneChannel) > 0 })
	_, err = b.c.Purge(b.ctx, "default", job.StatePending, nil)
	must(t, err)
	if err := <-done; !errors.Is(err, job.ErrCanceled) && !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("purged while waited on: %v", err)
	}
}

func testPurgeNewLane(t *testing.T, b *bundle) {
	enqueue(t, b, "a")
	_, err := b.c.Purge(b.ctx, "default", job.StatePending, nil) // caches the lane list [a]
	must(t, err)
	enqueue(t, b, "b") // a lane that list lacks
	n, err := b.c.Purge(b.ctx, "default", job.StatePending, nil)
	must(t, err)
	if c := counts(t, b, "default"); n != 1 || c.Pending != 0 {
		t.Fatalf("purged %d, left %+v", n, c)
	}
}

func testUnclaimedHandOff(t *testing.T, b *bundle) {
	// a worker marks itself idle and then vanishes without claiming its hand-off
	must(t, b.s.MarkIdle(b.ctx, []string{"default"}, "ghost", b.clock.Now().Add(time.Minute), time.Second))
	h := enqueue(t, b, "t")
	if st, _ := h.State(b.ctx); st != job.StateActive {
		t.Fatalf("not handed off: %s", st)
	}
	b.clock.Advance(2 * time.Second)
	n, _, err := b.s.ReclaimExpired(b.ctx, "default", "lease expired")
	must(t, err)
	got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
	must(t, err)
	if n != 1 || len(got) != 1 || got[0].ID != h.ID || got[0].Attempts != 0 {
		t.Fatalf("reclaimed %d, then %+v: a job that never ran must keep its attempts", n, got)
	}
}

func testActivity(t *testing.T, b *bundle) {
	at := func(m int) time.Time { return b.clock.Now().Truncate(time.Minute).Add(time.Duration(m) * time.Minute) }
	// two workers' tallies for the current minute add up; one for two minutes later
	must(t, b.s.AddActivity(b.ctx, "default", []store.Minute{
		{Start: at(0), Succeeded: 2, Retried: 1, WaitSum: 4 * time.Second, WaitCount: 2, WaitMax: 3 * time.Second},
	}))
	must(t, b.s.AddActivity(b.ctx, "default", []store.Minute{
		{Start: at(0), Succeeded: 1, WaitSum: 2 * time.Second, WaitCount: 1, WaitMax: 2 * time.Second},
		{Start: at(2), Failed: 1},
	}))
	b.clock.Advance(2 * time.Minute)
	// a tally flushed late, for a minute the ring has since reused, is dropped
	must(t, b.s.AddActivity(b.ctx, "default", []store.Minute{{Start: at(-60), Succeeded: 100}}))

	mins, err := b.c.Activity(b.ctx, "default", 3)
	must(t, err)
	if len(mins) != 3 {
		t.Fatalf("%d minutes", len(mins))
	}
	first, now := mins[0], mins[2]
	if first.Succeeded != 3 || first.Retried != 1 || first.Failed != 0 || first.WaitCount != 3 ||
		first.WaitSum != 6*time.Second || first.WaitMax != 3*time.Second || !first.Start.Equal(at(-2)) {
		t.Fatalf("first minute: %+v", first)
	}
	if mins[1] != (queue.Minute{Start: mins[1].Start}) {
		t.Fatalf("idle minute: %+v", mins[1])
	}
	if now.Succeeded != 0 || now.Failed != 1 || !now.Start.Equal(at(0)) {
		t.Fatalf("current minute: %+v", now)
	}
	sum := queue.Summarize(mins, b.clock.Now().Truncate(time.Minute).Add(30*time.Second)) // 2.5 minutes of the 3
	if sum.Succeeded != 3 || sum.PerMinute != 3/2.5 || sum.FailureRate != 0.4 || sum.WaitMean != 2*time.Second || sum.WaitMax != 3*time.Second {
		t.Fatalf("summary %+v", sum)
	}
	// an hour later the ring's slots are reused: the old minutes are not counted again
	b.clock.Advance(time.Hour)
	mins, err = b.c.Activity(b.ctx, "default", 60)
	must(t, err)
	for _, m := range mins {
		if m.Succeeded+m.Failed+m.Retried != 0 {
			t.Fatalf("an hour later, minute %s still counts %+v", m.Start, m)
		}
	}
	if _, err := b.c.Activity(b.ctx, "default", 61); err == nil {
		t.Fatal("61 minutes accepted")
	}
}

func testTrimIdle(t *testing.T, b *bundle) {
	done := enqueue(t, b, "t", job.Retention(time.Minute))
	failed := enqueue(t, b, "t", job.MaxRetries(0), job.Key("k1"))
	fetchIDs(t, b, "default", "w", 2)
	_, err := b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: done.ID, Retention: time.Minute}})
	must(t, err)
	_, err = b.s.Fail(b.ctx, "default", "w", store.Failure{ID: failed.ID, Error: "x", Started: b.clock.Now()})
	must(t, err)
	if n, err := b.s.Trim(b.ctx, "default"); err != nil || n != 0 {
		t.Fatalf("nothing is due for trimming yet: %d %v", n, err)
	}
	// no acknowledgement comes: the trim alone honours the retention
	b.clock.Advance(2 * time.Minute)
	n, err := b.s.Trim(b.ctx, "default")
	must(t, err)
	if c := counts(t, b, "default"); n != 1 || c.Succeeded != 0 || c.Failed != 1 {
		t.Fatalf("after the retention: trimmed %d, %+v", n, c)
	}
	if _, err := done.Job(b.ctx); !errors.Is(err, job.ErrNotFound) {
		t.Fatalf("expired job still readable: %v", err)
	}
	b.clock.Advance(b.s.FailedAge + time.Minute)
	n, err = b.s.Trim(b.ctx, "default")
	must(t, err)
	if c := counts(t, b, "default"); n != 1 || c.Failed != 0 {
		t.Fatalf("after the failed age: trimmed %d, %+v", n, c)
	}
	if left, _ := b.s.Redis().HLen(b.ctx, b.s.Keys("default").JobKeys).Result(); left != 0 {
		t.Fatalf("a trimmed keyed job left %d jkey entries", left)
	}
	// the caps: the oldest beyond them go
	b.s.MaxSucceeded = 2
	for range 4 {
		h := enqueue(t, b, "t")
		fetchIDs(t, b, "default", "w", 1)
		_, err := b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: h.ID, Retention: time.Hour}})
		must(t, err)
	}
	_, err = b.s.Trim(b.ctx, "default")
	must(t, err)
	if c := counts(t, b, "default"); c.Succeeded != 2 {
		t.Fatalf("cap of 2 left %d", c.Succeeded)
	}
}

// numSub counts channel's subscribers; on a cluster, on every node (NUMSUB counts the
// node it asks only).
func numSub(b *bundle, channel string) int64 {
	if cc, ok := b.s.Redis().(*redis.ClusterClient); ok {
		var total atomic.Int64
		_ = cc.ForEachShard(b.ctx, func(ctx context.Context, n *redis.Client) error {
			m, err := n.PubSubNumSub(ctx, channel).Result()
			total.Add(m[channel])
			return err
		})
		return total.Load()
	}
	n, _ := b.s.Redis().PubSubNumSub(b.ctx, channel).Result()
	return n[channel]
}
