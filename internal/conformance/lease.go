package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/redis/go-redis/v9"
)

// leaseCases: every state change of an active job names the lease it ends, hand-offs
// do not outlive their lease, and leases run on Redis' clock.
func leaseCases() []struct {
	name string
	fn   func(t *testing.T, b *bundle)
} {
	return []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"StateChangesNameTheirLease", testStateChangesNameLease},
		{"StaleHandOffEntryDropped", testStaleHandOffEntry},
		{"LateClaimGetsFullLease", testLateClaimFullLease},
		{"DelayedFetchGetsFullLease", testDelayedFetchFullLease},
		{"HRRNWithProducerClockAhead", testHRRNClockAhead},
	}
}

// The same worker holds a job under a lease, loses it to the reaper and fetches the job
// again: nothing done in the old lease's name may touch the new one.
func testStateChangesNameLease(t *testing.T, b *bundle) {
	h := enqueue(t, b, "t", job.MaxRetries(3))
	first, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Second)
	must(t, err)
	b.clock.Advance(2 * time.Second)
	if n, _, err := b.s.ReclaimExpired(b.ctx, "default", "lease expired"); err != nil || n != 1 {
		t.Fatalf("reclaimed %d, %v", n, err)
	}
	second, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
	must(t, err)
	if len(first) != 1 || len(second) != 1 || second[0].ID != h.ID || !second[0].At.After(first[0].At) {
		t.Fatalf("fetches %+v then %+v", first, second)
	}
	old, cur := first[0].Lease(), second[0].Lease()

	lost, _, err := b.s.RenewLeases(b.ctx, "default", "w", []store.Lease{old, cur}, time.Minute)
	must(t, err)
	if len(lost) != 1 || lost[0] != old {
		t.Fatalf("renewal of the old and the current lease: lost %+v, want only the old one", lost)
	}
	res, err := b.s.FailResult(b.ctx, "default", "w", store.Failure{ID: h.ID, Retry: true, Due: b.clock.Now(), Error: "late", Started: old.Start})
	must(t, err)
	if res != store.FailNotHeld {
		t.Fatalf("a failure in the old lease's name: %v, want not held", res)
	}
	if n, err := b.s.HandBack(b.ctx, "default", "w", []store.Lease{old}); err != nil || n != 0 {
		t.Fatalf("hand-back of the old lease moved %d, %v", n, err)
	}
	ackLost, err := b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: h.ID, Retention: time.Minute, Started: old.Start}})
	must(t, err)
	equal(t, "ack in the old lease's name", ackLost, []string{h.ID})
	if st, _ := h.State(b.ctx); st != job.StateActive {
		t.Fatalf("after the old lease's changes the job is %s, want still active", st)
	}
	ackLost, err = b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: h.ID, Retention: time.Minute, Started: cur.Start}})
	must(t, err)
	equal(t, "ack in the current lease's name", ackLost, nil)
	if j, err := h.Job(b.ctx); err != nil || j.State != job.StateSucceeded || j.Attempt != 2 {
		t.Fatalf("job %+v %v, want succeeded on attempt 2", j, err)
	}
}

// A hand-off that no worker claimed is taken back with its ready entry, so no worker
// can start it from that entry later; and a claim of it fails once it is taken back.
func testStaleHandOffEntry(t *testing.T, b *bundle) {
	k := b.s.Keys("default")
	h, w := handOff(t, b, "ghost")
	// the ready entry names the lease it was handed with, so any worker judges it by it
	if w.HandOff.ID != h.ID || w.HandOffLease != time.Second || !w.HandedAt.Equal(b.clock.Now().Truncate(time.Millisecond)) {
		t.Fatalf("hand-off entry read as %+v (lease %s at %s)", w.HandOff, w.HandOffLease, w.HandedAt)
	}
	b.clock.Advance(2 * time.Second)
	if n, _, err := b.s.ReclaimExpired(b.ctx, "default", "lease expired"); err != nil || n != 1 {
		t.Fatalf("reclaimed %d, %v", n, err)
	}
	if n, _ := b.s.Redis().LLen(b.ctx, k.Ready).Result(); n != 0 {
		t.Fatalf("%d ready entries left after the hand-off was taken back", n)
	}
	got, err := b.s.Fetch(b.ctx, "default", "w", 1, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].ID != h.ID {
		t.Fatalf("fetched %+v", got)
	}
	ok, err := b.s.Claim(b.ctx, "default", w.HandOff.Lease(), "late", time.Minute)
	must(t, err)
	if ok {
		t.Fatal("a taken-back hand-off was claimed over a fetched lease")
	}
	if lost, _, _ := b.s.RenewLeases(b.ctx, "default", "w", []store.Lease{got[0].Lease()}, time.Minute); len(lost) != 0 {
		t.Fatalf("the fetch's lease was lost to a stale claim: %+v", lost)
	}
}

// handOff marks worker idle on default with a lease of a second, enqueues a job, which
// is handed to it, and returns the job and its ready entry as read.
func handOff(t *testing.T, b *bundle, worker string) (*queue.Handle, store.Wake) {
	t.Helper()
	must(t, b.s.MarkIdle(b.ctx, []string{"default"}, worker, b.clock.Now().Add(time.Minute), time.Second))
	h := enqueue(t, b, "t")
	entries, err := b.s.Redis().LRange(b.ctx, b.s.Keys("default").Ready, 0, -1).Result()
	must(t, err)
	if len(entries) != 1 {
		t.Fatalf("ready list %q after a hand-off", entries)
	}
	w, err := b.s.ParseHandOff("default", entries[0])
	must(t, err)
	return h, w
}

// A claim starts a full lease of the claiming worker, however late it comes.
func testLateClaimFullLease(t *testing.T, b *bundle) {
	k := b.s.Keys("default")
	h, w := handOff(t, b, "idle")
	b.clock.Advance(900 * time.Millisecond) // 100 ms of the hand-off's lease left
	ok, err := b.s.Claim(b.ctx, "default", w.HandOff.Lease(), "worker", 30*time.Second)
	must(t, err)
	if !ok {
		t.Fatal("claim within the lease refused")
	}
	deadline, err := b.s.Redis().ZScore(b.ctx, k.Active, h.ID).Result()
	must(t, err)
	if want := float64(b.clock.Now().Add(30 * time.Second).UnixMilli()); deadline != want {
		t.Fatalf("lease deadline after a late claim %v, want %v (a full lease from the claim)", deadline, want)
	}
	if ok, _ := b.s.Claim(b.ctx, "default", w.HandOff.Lease(), "other", 30*time.Second); ok {
		t.Fatal("a hand-off was claimed twice")
	}
}

// A fetch held up by a Redis stall longer than its lease still gets a full lease: the
// deadline is set by Redis' clock when the script runs, not by the caller's when it sent.
func testDelayedFetchFullLease(t *testing.T, b *bundle) {
	const lease, stall = 300 * time.Millisecond, 900 * time.Millisecond
	s := store.New(b.s.Redis(), b.s.Namespace(), nil) // leases on Redis' clock
	// the lane list is cached first (its lane made known), so the fetch below is one
	// call, sent into the stall
	enqueue(t, b, "t")
	if got, err := s.Fetch(b.ctx, "default", "w", 1, lease); err != nil || len(got) != 1 {
		t.Fatalf("fetched %+v, %v", got, err)
	}
	h := enqueue(t, b, "t")
	k := s.Keys("default")
	stalled := make(chan error, 1)
	go func() {
		// a busy script on the queue's node: everything else there waits for it
		stalled <- b.s.Redis().Eval(context.Background(), `
local t0 = redis.call('TIME')
local stop_at = tonumber(t0[1]) * 1e6 + tonumber(t0[2]) + tonumber(ARGV[1])
repeat local t = redis.call('TIME') until tonumber(t[1]) * 1e6 + tonumber(t[2]) >= stop_at
return 1`, []string{k.Paused + ":stall"}, stall.Microseconds()).Err()
	}()
	probe := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrsOf(b.s.Redis()), ReadTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer probe.Close()
	for { // the stall has begun once a keyed read on its node times out
		ctx, cancel := context.WithTimeout(b.ctx, 50*time.Millisecond)
		err := probe.Exists(ctx, k.Paused).Err()
		cancel()
		if err != nil {
			break
		}
		select {
		case err := <-stalled:
			t.Fatalf("the stall ended before a read saw it: %v", err)
		default:
		}
	}
	got, err := s.Fetch(b.ctx, "default", "w", 1, lease)
	must(t, err)
	must(t, <-stalled)
	if len(got) != 1 || got[0].ID != h.ID {
		t.Fatalf("fetched %+v", got)
	}
	deadline, err := s.Redis().ZScore(b.ctx, k.Active, h.ID).Result()
	must(t, err)
	now, err := redisTime(b.ctx, s.Redis(), k.Paused)
	must(t, err)
	if left := time.Duration(deadline)*time.Millisecond - time.Duration(now.UnixMilli())*time.Millisecond; left < lease-150*time.Millisecond {
		t.Fatalf("a fetch delayed %s by a stall got %s of its %s lease", stall, left, lease)
	}
	if !got[0].At.Equal(time.UnixMilli(int64(deadline)).Add(-lease)) {
		t.Fatalf("the lease's start %s is not its deadline %v less the lease", got[0].At, deadline)
	}
}

// Producers whose clock runs ahead of the fetch's (Redis') stamp arrivals in its
// future: such a head has waited nothing, not a negative time. Counted as negative, a
// 1 ms job's response ratio went to -499 at 500 ms of skew while a long job's stayed
// near 0.5, and hrrn ran the long job first.
func testHRRNClockAhead(t *testing.T, b *bundle) {
	must(t, b.c.SetPriors(b.ctx, "default", map[string]float64{"short": 1, "long": 1000}))
	setRanking(t, b, ranking.ModeActive, ranking.RuleHRRN, 16)
	short := enqueue(t, b, "short")
	b.clock.Advance(time.Millisecond)
	enqueue(t, b, "long")
	behind := b.clock.Now().Add(-500 * time.Millisecond)
	s := store.New(b.s.Redis(), b.s.Namespace(), func() time.Time { return behind })
	got, err := s.Fetch(b.ctx, "default", "w", 1, time.Minute)
	must(t, err)
	if len(got) != 1 || got[0].ID != short.ID {
		t.Fatalf("with the fetch's clock 500ms behind the producer's, hrrn took %+v first, want the short job %s", got, short.ID)
	}
}

// redisTime reads the clock of the node holding key.
func redisTime(ctx context.Context, rdb redis.UniversalClient, key string) (time.Time, error) {
	v, err := rdb.Eval(ctx, `local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000)`, []string{key}).Int64()
	return time.UnixMilli(v), err
}

// addrsOf lists the addresses rdb connects to.
func addrsOf(rdb redis.UniversalClient) []string {
	switch c := rdb.(type) {
	case *redis.Client:
		return []string{c.Options().Addr}
	case *redis.ClusterClient:
		return c.Options().Addrs
	}
	return nil
}
