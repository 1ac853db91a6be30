package conformance

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

func limitCases() []struct {
	name string
	fn   func(t *testing.T, b *bundle)
} {
	return []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"LimitCapAcrossWorkers", testLimitCapConcurrent},
		{"LimitEveryEndFreesOnce", testLimitFreesOnce},
		{"LimitRateTokenBucket", testLimitRate},
		{"LimitNeverReorders", testLimitNoReorder},
		{"LimitQueueCap", testLimitQueueCap},
		{"LimitPerFairKey", testLimitPerKey},
		{"LimitTaskInsideFairKeys", testLimitTaskInFair},
		{"LimitNoHandOff", testLimitNoHandOff},
		{"LimitRecountRepairs", testLimitRecount},
		{"LimitBadInput", testLimitBadInput},
	}
}

func setLimit(t *testing.T, b *bundle, q string, l job.Limit) {
	t.Helper()
	must(t, b.s.SetLimit(b.ctx, q, l))
}

func capTask(task string, n int) job.Limit {
	return job.Limit{Scope: job.ScopeTask, Task: task, MaxRunning: n}
}

func rateOf(t *testing.T, spec string) job.Rate {
	t.Helper()
	r, err := job.ParseRate(spec)
	must(t, err)
	return r
}

// running is how many of queue's leases now belong to task (one read: a snapshot).
func running(t *testing.T, b *bundle, q, task string) int {
	t.Helper()
	owners, err := b.s.Redis().HVals(b.ctx, b.s.Keys(q).Owners).Result()
	must(t, err)
	n := 0
	for _, o := range owners {
		parts := strings.SplitN(o, "|", 4)
		if len(parts) == 4 && strings.HasPrefix(parts[3], "5:"+task) {
			n++
		}
	}
	return n
}

// limitUse is the use of queue's limit on task, as Limits reports it.
func limitUse(t *testing.T, b *bundle, q, task string) job.LimitUse {
	t.Helper()
	ls, err := b.s.Limits(b.ctx, q)
	must(t, err)
	for _, l := range ls {
		if l.Scope == job.ScopeTask && l.Task == task {
			return l
		}
	}
	t.Fatalf("no limit on %s in %+v", task, ls)
	return job.LimitUse{}
}

func tasksOf(got []store.Fetched) []string {
	out := make([]string, len(got))
	for i, f := range got {
		out[i] = f.Lane[2:]
	}
	return out
}

// Four workers fetching, acknowledging, failing and handing back at once never hold
// more than 3 jobs of a task capped at 3, and the unlimited task runs beside it.
func testLimitCapConcurrent(t *testing.T, b *bundle) {
	setLimit(t, b, "default", capTask("c", 3))
	for range 60 {
		enqueue(t, b, "c", job.MaxRetries(5))
		enqueue(t, b, "d")
	}
	var mu sync.Mutex
	maxSeen, doneC := 0, 0
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := fmt.Sprintf("w%d", w)
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for round := 0; round < 400; round++ {
				got, err := b.s.Fetch(b.ctx, "default", worker, 1+rng.IntN(4), time.Minute)
				if err != nil {
					errs <- err
					return
				}
				n := running(t, b, "default", "c")
				mu.Lock()
				maxSeen = max(maxSeen, n)
				mu.Unlock()
				if len(got) == 0 {
					mu.Lock()
					finished := doneC == 60
					mu.Unlock()
					if finished {
						return
					}
					continue
				}
				var done []store.Done
				for _, f := range got {
					switch rng.IntN(4) {
					case 0: // a failed attempt, retried at once
						if _, err := b.s.FailResult(b.ctx, "default", worker, store.Failure{ID: f.ID, Retry: true, Due: b.clock.Now(), Started: f.At}); err != nil {
							errs <- err
							return
						}
					case 1: // handed back
						if _, err := b.s.HandBack(b.ctx, "default", worker, []store.Lease{f.Lease()}); err != nil {
							errs <- err
							return
						}
					default:
						done = append(done, store.Done{ID: f.ID, Started: f.At})
						if f.Lane == "5:c" {
							mu.Lock()
							doneC++
							mu.Unlock()
						}
					}
				}
				if _, err := b.s.Ack(b.ctx, "default", worker, done); err != nil {
					errs <- err
					return
				}
				if _, _, err := b.s.Promote(b.ctx, "default", 100); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if maxSeen > 3 {
		t.Fatalf("%d jobs of a task capped at 3 ran at once", maxSeen)
	}
	if maxSeen < 3 {
		t.Fatalf("at most %d jobs of the capped task ran at once: the cap of 3 was never used", maxSeen)
	}
	if u := limitUse(t, b, "default", "c"); u.Running != running(t, b, "default", "c") {
		t.Fatalf("the limit counts %d running, the leases say %d", u.Running, running(t, b, "default", "c"))
	}
}

// Each way a lease ends frees its slot once: ack, failure (retry and dead), hand-back,
// reclaim of an expired lease; an ack of a lease taken back frees nothing.
func testLimitFreesOnce(t *testing.T, b *bundle) {
	setLimit(t, b, "default", capTask("c", 2))
	for range 8 {
		enqueue(t, b, "c", job.MaxRetries(1))
	}
	expect := func(n int, what string) {
		t.Helper()
		if u := limitUse(t, b, "default", "c"); u.Running != n {
			t.Fatalf("%s: the limit counts %d running, want %d", what, u.Running, n)
		}
		if r := running(t, b, "default", "c"); r != n {
			t.Fatalf("%s: %d leases held, want %d", what, r, n)
		}
	}
	got, err := b.s.Fetch(b.ctx, "default", "w", 5, time.Minute)
	must(t, err)
	if len(got) != 2 {
		t.Fatalf("fetched %d of a task capped at 2", len(got))
	}
	expect(2, "fetched")
	if more, _ := b.s.Fetch(b.ctx, "default", "w", 5, time.Minute); len(more) != 0 {
		t.Fatalf("fetched %d more at the cap", len(more))
	}
	_, err = b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: got[0].ID, Started: got[0].At}, {ID: got[0].ID, Started: got[0].At}})
	must(t, err)
	expect(1, "acknowledged (twice in one call)")
	_, err = b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: got[0].ID, Started: got[0].At}})
	must(t, err)
	expect(1, "acknowledged again")
	ok, err := b.s.Fail(b.ctx, "default", "w", store.Failure{ID: got[1].ID, Retry: true, Due: b.clock.Now(), Started: got[1].At})
	must(t, err)
	if !ok {
		t.Fatal("the failure was not recorded")
	}
	expect(0, "failed, to retry")
	got, err = b.s.Fetch(b.ctx, "default", "w", 5, time.Minute)
	must(t, err)
	expect(2, "fetched again")
	_, err = b.s.HandBack(b.ctx, "default", "w", []store.Lease{got[0].Lease()})
	must(t, err)
	expect(1, "handed back")
	_, err = b.s.HandBack(b.ctx, "default", "w", []store.Lease{got[0].Lease()})
	must(t, err)
	expect(1, "handed back again")
	// a lease that expires: reclaimed once; its worker's late ack and failure free nothing
	short, err := b.s.Fetch(b.ctx, "default", "dying", 1, time.Second)
	must(t, err)
	if len(short) != 1 {
		t.Fatalf("fetched %d", len(short))
	}
	expect(2, "fetched by a worker about to die")
	b.clock.Advance(2 * time.Second)
	// the other lease (a minute) is still held
	if n, _, err := b.s.ReclaimExpired(b.ctx, "default", "lost"); err != nil || n != 1 {
		t.Fatalf("reclaimed %d, %v", n, err)
	}
	expect(1, "reclaimed")
	_, err = b.s.Ack(b.ctx, "default", "dying", []store.Done{{ID: short[0].ID, Started: short[0].At}})
	must(t, err)
	if ok, _ := b.s.Fail(b.ctx, "default", "dying", store.Failure{ID: short[0].ID, Error: "x", Started: short[0].At}); ok {
		t.Fatal("a failure of a reclaimed lease was recorded")
	}
	expect(1, "the dead worker's ack and failure")
	// failed for good
	_, err = b.s.Fail(b.ctx, "default", "w", store.Failure{ID: got[1].ID, Error: "dead", Started: got[1].At})
	must(t, err)
	expect(0, "failed for good")
}

// A rate limit is a token bucket in the fetch's clock: the burst at once, then a token
// per 1/rate; the fetch says when the next token is due, and takes the unlimited work
// in the same call.
func testLimitRate(t *testing.T, b *bundle) {
	setLimit(t, b, "default", job.Limit{Scope: job.ScopeTask, Task: "a", Rate: rateOf(t, "10/s:2")})
	var as []string
	for range 20 {
		as = append(as, enqueue(t, b, "a").ID)
	}
	for range 3 {
		enqueue(t, b, "b")
	}
	batch, err := b.s.FetchBatch(b.ctx, "default", "w", 10, time.Minute)
	must(t, err)
	if got := tasksOf(batch.Jobs); !slices.Equal(got, []string{"a", "a", "b", "b", "b"}) {
		t.Fatalf("first fetch took %v, want the burst of 2 a then every b", got)
	}
	if batch.Jobs[0].ID != as[0] || batch.Jobs[1].ID != as[1] {
		t.Fatal("the rate took a's jobs out of their order")
	}
	if batch.TokenIn != 100*time.Millisecond {
		t.Fatalf("next token in %s, want 100ms", batch.TokenIn)
	}
	batch, err = b.s.FetchBatch(b.ctx, "default", "w", 10, time.Minute)
	must(t, err)
	if len(batch.Jobs) != 0 || batch.TokenIn != 100*time.Millisecond {
		t.Fatalf("with no token: took %d, next in %s", len(batch.Jobs), batch.TokenIn)
	}
	b.clock.Advance(150 * time.Millisecond)
	batch, err = b.s.FetchBatch(b.ctx, "default", "w", 10, time.Minute)
	must(t, err)
	if len(batch.Jobs) != 1 || batch.Jobs[0].ID != as[2] || batch.TokenIn != 50*time.Millisecond {
		t.Fatalf("150 ms later: took %v, next in %s; want a's third, next in 50ms", tasksOf(batch.Jobs), batch.TokenIn)
	}
	b.clock.Advance(10 * time.Second) // the bucket holds its burst, no more
	batch, err = b.s.FetchBatch(b.ctx, "default", "w", 10, time.Minute)
	must(t, err)
	if len(batch.Jobs) != 2 {
		t.Fatalf("after an idle spell took %d, want the burst of 2", len(batch.Jobs))
	}
	// over a simulated second of fetches every 10 ms, at most rate + burst start
	started := 0
	for range 100 {
		b.clock.Advance(10 * time.Millisecond)
		got, err := b.s.Fetch(b.ctx, "default", "w", 10, time.Minute)
		must(t, err)
		started += len(got)
	}
	if started < 9 || started > 12 {
		t.Fatalf("%d started in a second at 10/s", started)
	}
	if u := limitUse(t, b, "default", "a"); u.Running != 0 || u.Tokens < 0 || u.Tokens > 2 {
		t.Fatalf("use %+v: a rate alone counts no running job; tokens within the burst", u)
	}
	// a bucket stamped by a clock an hour ahead (a failover to a replica whose clock is
	// behind) refills from now, not from that hour
	st := b.s.Keys("default").LimitState
	ahead := b.clock.Now().Add(time.Hour).UnixMilli()
	must(t, b.s.Redis().HSet(b.ctx, st, "b:t:a", fmt.Sprintf("0|%d", ahead)).Err())
	if got := fetchIDs(t, b, "default", "w", 10); len(got) != 0 {
		t.Fatalf("took %d from an empty bucket", len(got))
	}
	b.clock.Advance(250 * time.Millisecond)
	if got := fetchIDs(t, b, "default", "w", 10); len(got) != 2 {
		t.Fatalf("250 ms after a bucket stamped an hour ahead took %d, want its burst of 2", len(got))
	}
	// full again, the bucket leaves the state at the next recount
	b.clock.Advance(time.Second)
	must(t, b.s.RecountLimits(b.ctx, "default"))
	if n, _ := b.s.Redis().HExists(b.ctx, st, "b:t:a").Result(); n {
		t.Fatal("a full bucket stayed in the state after a recount")
	}
}

// A limit on a task that has no jobs waiting changes no order, in every mode.
func testLimitNoReorder(t *testing.T, b *bundle) {
	for _, mode := range []string{"fifo", "active"} {
		order := func(q string) []int {
			if mode == "active" {
				setRankMode(t, b, q)
			}
			var ids []string
			for i := range 12 {
				task := []string{"x", "y", "z"}[i%3]
				ids = append(ids, enqueue(t, b, task, job.Queue(q), job.Priority(i%2*5), job.Estimate(time.Duration(1+i%4)*time.Millisecond)).ID)
				b.clock.Advance(time.Millisecond)
			}
			got := fetchIDs(t, b, q, "w", 5)
			got = append(got, fetchIDs(t, b, q, "w", 20)...)
			pos := make([]int, len(got)) // positions, not ids: the queues' ids differ
			for i, id := range got {
				pos[i] = slices.Index(ids, id)
			}
			return pos
		}
		plain := order("plain-" + mode)
		setLimit(t, b, "limited-"+mode, capTask("idle-task", 1))
		setLimit(t, b, "limited-"+mode, job.Limit{Scope: job.ScopeQueue, MaxRunning: 1000})
		limited := order("limited-" + mode)
		if !slices.Equal(plain, limited) {
			t.Fatalf("%s: order %v with an idle limit, %v without", mode, limited, plain)
		}
	}
}

func setRankMode(t *testing.T, b *bundle, q string) {
	t.Helper()
	c := ranking.DefaultConfig()
	c.Mode = ranking.ModeActive
	must(t, b.s.SetRanking(b.ctx, q, c))
}

// The queue's cap bounds every task's jobs together.
func testLimitQueueCap(t *testing.T, b *bundle) {
	setLimit(t, b, "default", job.Limit{Scope: job.ScopeQueue, MaxRunning: 3})
	for i := range 6 {
		enqueue(t, b, []string{"x", "y"}[i%2])
	}
	got := fetchIDs(t, b, "default", "w", 10)
	if len(got) != 3 {
		t.Fatalf("took %d under a queue cap of 3", len(got))
	}
	if more := fetchIDs(t, b, "default", "w2", 10); len(more) != 0 {
		t.Fatalf("took %d more", len(more))
	}
	_, err := b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: got[0]}})
	must(t, err)
	// the freed slot left a wake-up for a waiting worker
	if n, _ := b.s.Redis().LLen(b.ctx, b.s.Keys("default").Wake).Result(); n != 1 {
		t.Fatalf("%d wake-up tokens after a slot freed", n)
	}
	if more := fetchIDs(t, b, "default", "w2", 10); len(more) != 1 {
		t.Fatalf("took %d after one ended", len(more))
	}
}

// A per-key cap: one job at a time per key, every key in parallel; the key at its cap
// keeps its turn for when its job ends.
func testLimitPerKey(t *testing.T, b *bundle) {
	for _, mode := range []fairshare.Mode{fairshare.ModeLRU, fairshare.ModeShare} {
		q := "k-" + string(mode)
		setFair(t, b, q, mode)
		setLimit(t, b, q, job.Limit{Scope: job.ScopeKey, MaxRunning: 1})
		fk := fairKeys{}
		for range 3 {
			for _, key := range []string{"a", "b", "c"} {
				fk.enqueue(t, b, "t", key, job.Queue(q))
			}
		}
		got := fairFetch(t, b, q, 10)
		keys := map[string]int{}
		for _, f := range got {
			keys[fk[f.ID]]++
		}
		if len(got) != 3 || keys["a"] != 1 || keys["b"] != 1 || keys["c"] != 1 {
			t.Fatalf("%s: took %v, want one of each key", mode, keys)
		}
		if more := fairFetch(t, b, q, 10); len(more) != 0 {
			t.Fatalf("%s: took %d with every key at its cap", mode, len(more))
		}
		var first store.Fetched
		for _, f := range got {
			if fk[f.ID] == "b" {
				first = f
			}
		}
		_, err := b.s.Ack(b.ctx, q, "w", []store.Done{{ID: first.ID, Started: first.At, Fair: first.Fair}})
		must(t, err)
		more := fairFetch(t, b, q, 10)
		if len(more) != 1 || fk[more[0].ID] != "b" {
			t.Fatalf("%s: after b's job ended took %d (%v)", mode, len(more), more)
		}
		ls, err := b.s.Limits(b.ctx, q)
		must(t, err)
		per := map[string]int{}
		for _, l := range ls {
			if l.Key != "" {
				per[l.Key] = l.Running
			}
		}
		if per["a"] != 1 || per["b"] != 1 || per["c"] != 1 {
			t.Fatalf("%s: per-key use %v", mode, per)
		}
	}
}

// A task's limit inside fair keys: its jobs wait in their keys, the keys' other jobs go.
func testLimitTaskInFair(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeLRU)
	setLimit(t, b, "default", capTask("slow", 1))
	fk := fairKeys{}
	s1 := fk.enqueue(t, b, "slow", "a")
	s2 := fk.enqueue(t, b, "slow", "a")
	f1 := fk.enqueue(t, b, "fast", "a")
	s3 := fk.enqueue(t, b, "slow", "b")
	f2 := fk.enqueue(t, b, "fast", "b")
	got := fairFetch(t, b, "default", 10)
	var ids []string
	for _, f := range got {
		ids = append(ids, f.ID)
	}
	slices.Sort(ids)
	want := []string{s1, f1, f2}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("took %v, want the first slow job and both fast ones", ids)
	}
	var held store.Fetched
	for _, f := range got {
		if f.ID == s1 {
			held = f
		}
	}
	_, err := b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: held.ID, Started: held.At, Fair: held.Fair}})
	must(t, err)
	next := fairFetch(t, b, "default", 10)
	if len(next) != 1 || (next[0].ID != s2 && next[0].ID != s3) {
		t.Fatalf("after the slow job ended took %v", next)
	}
}

// A queue with limits hands nothing straight to an idle worker: a hand-off would skip
// the fetch, where limits are kept.
func testLimitNoHandOff(t *testing.T, b *bundle) {
	must(t, b.s.MarkIdle(b.ctx, []string{"default"}, "idle", b.clock.Now().Add(time.Minute), time.Minute))
	setLimit(t, b, "default", capTask("c", 1))
	must(t, b.s.MarkIdle(b.ctx, []string{"default"}, "idle2", b.clock.Now().Add(time.Minute), time.Minute))
	enqueue(t, b, "c")
	enqueue(t, b, "c")
	if n, _ := b.s.Redis().LLen(b.ctx, b.s.Keys("default").Ready).Result(); n != 0 {
		t.Fatalf("%d jobs handed off past the limit", n)
	}
	if got := fetchIDs(t, b, "default", "w", 5); len(got) != 1 {
		t.Fatalf("fetched %d of a task capped at 1", len(got))
	}
	// cleared, hand-offs come back
	setLimit(t, b, "default", job.Limit{Scope: job.ScopeTask, Task: "c"})
	if has, err := b.s.HasLimits(b.ctx, "default"); err != nil || has {
		t.Fatalf("limits left after clearing the only one: %v %v", has, err)
	}
}

// Recount sets the counts from the leases held: a count left by a lost owner entry
// heals.
func testLimitRecount(t *testing.T, b *bundle) {
	setLimit(t, b, "default", capTask("c", 2))
	for range 3 {
		enqueue(t, b, "c")
	}
	got := fetchIDs(t, b, "default", "w", 5)
	if len(got) != 2 {
		t.Fatalf("fetched %d", len(got))
	}
	k := b.s.Keys("default")
	must(t, b.s.Redis().HDel(b.ctx, k.Owners, got[0]).Err()) // a lost owner entry
	must(t, b.s.Redis().ZRem(b.ctx, k.Active, got[0]).Err())
	if more := fetchIDs(t, b, "default", "w", 5); len(more) != 0 {
		t.Fatal("the lost lease still counts before the recount")
	}
	must(t, b.s.RecountLimits(b.ctx, "default"))
	if u := limitUse(t, b, "default", "c"); u.Running != 1 {
		t.Fatalf("recounted %d running, want 1", u.Running)
	}
	if more := fetchIDs(t, b, "default", "w", 5); len(more) != 1 {
		t.Fatalf("after the recount fetched %d, want 1", len(more))
	}
}

func testLimitBadInput(t *testing.T, b *bundle) {
	for _, spec := range []string{"100/x", "0/s", "-1/s", "NaN/s", "Inf/s", "100", "/s", "100/s:0", "100/s:x", "2000000/s", "1/d", "0.1/h"} {
		_, err := job.ParseRate(spec)
		if !errors.Is(err, job.ErrBadLimit) || !strings.Contains(err.Error(), spec) {
			t.Errorf("ParseRate(%q) = %v: want ErrBadLimit naming it", spec, err)
		}
	}
	for _, n := range []int{0, -1, job.MaxRunningLimit + 1} {
		if err := b.s.SetLimit(b.ctx, "default", capTask("c", n)); n != 0 && !errors.Is(err, job.ErrBadLimit) {
			t.Errorf("cap %d: %v", n, err)
		}
		var o job.Options
		if err := job.MaxRunning(n)(&o); !errors.Is(err, job.ErrBadLimit) || !strings.Contains(err.Error(), fmt.Sprint(n)) {
			t.Errorf("MaxRunning(%d) = %v", n, err)
		}
	}
	if err := b.s.SetLimit(b.ctx, "default", job.Limit{Scope: "tenant", MaxRunning: 1}); !errors.Is(err, job.ErrBadLimitScope) {
		t.Errorf("a bad scope: %v", err)
	}
	if err := b.s.SetLimit(b.ctx, "default", job.Limit{Scope: job.ScopeTask, Task: "", MaxRunning: 1}); err == nil {
		t.Error("a task limit without a task was set")
	}
	if has, _ := b.s.HasLimits(b.ctx, "default"); has {
		t.Error("a refused limit was stored")
	}
}
