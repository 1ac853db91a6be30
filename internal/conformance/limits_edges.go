package conformance

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking/fairshare"
	"github.com/redis/go-redis/v9"
)

func limitEdgeCases() []struct {
	name string
	fn   func(t *testing.T, b *bundle)
} {
	return []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"LimitEdgeEnqueueOneWakes", testEdgeEnqueueOneWakes},
		{"LimitEdgeEnqueueBesideHeldWakes", testEdgeEnqueueBesideHeld},
		{"LimitEdgeSkippedKeysBounded", testEdgeSkippedKeysBounded},
		{"LimitEdgeFairOrderAfterReread", testEdgeFairOrderAfterReread},
		{"LimitEdgeMixedCaps", testEdgeMixedCaps},
		{"LimitEdgeDefaultKeyRow", testEdgeDefaultKeyRow},
		{"LimitEdgeDamagedBucketRefills", testEdgeDamagedBucket},
		{"LimitEdgeDamagedCapFetchWorks", testEdgeDamagedCap},
		{"LimitEdgeRateShownAsEnforced", testEdgeRateShown},
		{"LimitEdgeLimitsTokensInFetchClock", testEdgeLimitsClock},
	}
}

// zrangeCalls is how many ZRANGE calls the server has run (INFO commandstats; scripts'
// calls count too), or -1 where the server does not say.
var zrangeRe = regexp.MustCompile(`cmdstat_zrange:calls=(\d+)`)

func zrangeCalls(t *testing.T, b *bundle) int64 {
	var node redis.UniversalClient = b.s.Redis()
	if cl, ok := node.(*redis.ClusterClient); ok {
		m, err := cl.MasterForKey(b.ctx, b.s.Keys("default").Index)
		if err != nil {
			return -1
		}
		node = m
	}
	s, err := node.Info(b.ctx, "commandstats").Result()
	if err != nil {
		return -1
	}
	m := zrangeRe.FindStringSubmatch(s)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// An enqueue into an empty queue with a limit leaves a wake-up for the idle workers.
func testEdgeEnqueueOneWakes(t *testing.T, b *bundle) {
	setLimit(t, b, "default", capTask("unrelated", 5))
	wake := b.s.Keys("default").Wake
	must(t, b.s.Redis().Del(b.ctx, wake).Err())
	enqueue(t, b, "d") // one immediate job: enqueue_one.lua
	if n, _ := b.s.Redis().LLen(b.ctx, wake).Result(); n != 1 {
		t.Fatalf("%d wake-up tokens after a job went into an empty queue with a limit", n)
	}
}

// Eligible work enqueued beside held-back work wakes an idle worker: the index is not
// empty, but no worker will fetch.
func testEdgeEnqueueBesideHeld(t *testing.T, b *bundle) {
	setLimit(t, b, "default", capTask("c", 1))
	enqueue(t, b, "c")
	enqueue(t, b, "c")
	if got := fetchIDs(t, b, "default", "w", 5); len(got) != 1 {
		t.Fatalf("fetched %d", len(got))
	}
	if got := fetchIDs(t, b, "default", "w", 5); len(got) != 0 { // the worker goes idle
		t.Fatalf("fetched %d", len(got))
	}
	wake := b.s.Keys("default").Wake
	must(t, b.s.Redis().Del(b.ctx, wake).Err()) // its wait took the token
	enqueue(t, b, "d")
	_, err := b.c.EnqueueBatch(b.ctx, []queue.Request{{Task: "d"}, {Task: "d"}})
	must(t, err)
	if n, _ := b.s.Redis().LLen(b.ctx, wake).Result(); n != 1 {
		t.Fatalf("%d wake-up tokens after eligible jobs joined held-back work", n)
	}
}

// A fair set whose keys hold only jobs of a task at its cap: the keys passed over and
// the jobs skipped count against LIMIT_SCAN for the whole fetch, which reads a bounded
// number of entries however many keys wait (counted in Redis' own commandstats).
func testEdgeSkippedKeysBounded(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeLRU)
	setLimit(t, b, "default", capTask("slow", 1))
	fk := fairKeys{}
	fk.enqueue(t, b, "slow", "first")
	if got := fairFetch(t, b, "default", 1); len(got) != 1 {
		t.Fatalf("fetched %d", len(got))
	}
	keys := 4000
	if zrangeCalls(t, b) < 0 {
		keys = 1500 // the embedded server is far slower: enough to show the time
	}
	var reqs []queue.Request
	for i := range keys {
		reqs = append(reqs, queue.Request{Task: "slow", Options: []job.Option{job.FairKey(fmt.Sprintf("k%05d", i))}})
	}
	for i := 0; i < len(reqs); i += 1000 {
		_, err := b.c.EnqueueBatch(b.ctx, reqs[i:min(i+1000, len(reqs))])
		must(t, err)
	}
	before := zrangeCalls(t, b)
	t0 := time.Now()
	got := fairFetch(t, b, "default", 10)
	d := time.Since(t0)
	calls := zrangeCalls(t, b) - before
	t.Logf("one fetch over %d held keys: %s, %d ZRANGE calls", keys, d, calls)
	if len(got) != 0 {
		t.Fatalf("fetched %d of a task at its cap", len(got))
	}
	if before >= 0 && calls > 3*1000 {
		t.Fatalf("one fetch ran %d ZRANGE calls (%s) over %d keys held back: not bounded by LimitScan", calls, d, keys)
	}
}

// A damaged bucket (tokens far below zero) refills like an empty one; it is not frozen
// for good with a token "an hour away" at every fetch.
func testEdgeDamagedBucket(t *testing.T, b *bundle) {
	setLimit(t, b, "default", job.Limit{Scope: job.ScopeTask, Task: "a", Rate: rateOf(t, "10/s:2")})
	enqueue(t, b, "a")
	st := b.s.Keys("default").LimitState
	must(t, b.s.Redis().HSet(b.ctx, st, "b:t:a", fmt.Sprintf("-1e300|%d", b.clock.Now().UnixMilli())).Err())
	b.clock.Advance(time.Minute)
	batch, err := b.s.FetchBatch(b.ctx, "default", "w", 5, time.Minute)
	must(t, err)
	if len(batch.Jobs) != 1 {
		t.Fatalf("a minute after damage at 10/s took %d, next token in %s", len(batch.Jobs), batch.TokenIn)
	}
}

// A damaged cap or count (a fraction, as a hand edit may leave) must not make every
// fetch of the queue fail.
func testEdgeDamagedCap(t *testing.T, b *bundle) {
	setLimit(t, b, "default", capTask("c", 3))
	for range 3 {
		enqueue(t, b, "c")
		b.clock.Advance(time.Millisecond)
	}
	enqueue(t, b, "d")
	// a setting edited by hand: the recount never rewrites it
	must(t, b.s.Redis().HSet(b.ctx, b.s.Keys("default").Limits, "t:c", "2.5||||s").Err())
	must(t, b.s.RecountLimits(b.ctx, "default"))
	got, err := b.s.Fetch(b.ctx, "default", "w", 5, time.Minute)
	if err != nil {
		t.Fatalf("a cap of 2.5 on c: every fetch of the queue fails: %v", err)
	}
	if len(got) < 3 {
		t.Fatalf("fetched %d", len(got))
	}
}

// What Limits shows is what fetch enforces: a Rate whose public fields were changed
// after ParseRate keeps its old spec, which Limits reads back.
func testEdgeRateShown(t *testing.T, b *bundle) {
	r := rateOf(t, "10/s")
	r.Count, r.Burst = 100, 50
	setLimit(t, b, "default", job.Limit{Scope: job.ScopeTask, Task: "a", Rate: r})
	for range 60 {
		enqueue(t, b, "a")
	}
	got := fetchIDs(t, b, "default", "w", 100)
	u := limitUse(t, b, "default", "a")
	if u.Rate.Count != 100 || u.Rate.Burst != 50 {
		t.Fatalf("Limits shows %s (count %v, burst %d); the fetch enforced burst %d", u.Rate, u.Rate.Count, u.Rate.Burst, len(got))
	}
}

// Limits reads buckets in the clock they are kept in (the fetch's), like the recount.
func testEdgeLimitsClock(t *testing.T, b *bundle) {
	setLimit(t, b, "default", job.Limit{Scope: job.ScopeTask, Task: "a", Rate: rateOf(t, "1/m:2")})
	for range 3 {
		enqueue(t, b, "a")
	}
	if got := fetchIDs(t, b, "default", "w", 5); len(got) != 2 {
		t.Fatalf("fetched %d", len(got))
	}
	if u := limitUse(t, b, "default", "a"); u.Tokens > 0.5 {
		t.Fatalf("the bucket is empty (the fetch took its 2 tokens just now) but Limits shows %.2f tokens", u.Tokens)
	}
}

// read_list says "full" (every key of fk is in the list) when its last page reached the
// end, though it kept only limit+1 of that page's keys: held keys that went idle leave
// room for more. A key served then goes back to the list's end and is served again
// before a key with a smaller tag that was left out.
func testEdgeFairOrderAfterReread(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeLRU)
	setLimit(t, b, "default", job.Limit{Scope: job.ScopeKey, MaxRunning: 2})
	setLimit(t, b, "default", capTask("slow", 1))
	fk := fairKeys{}
	fk.enqueue(t, b, "fast", "a")
	fk.enqueue(t, b, "fast", "a")
	fk.enqueue(t, b, "fast", "b")
	fk.enqueue(t, b, "fast", "b")
	fk.enqueue(t, b, "slow", "z")
	if got := fk.of(fairFetch(t, b, "default", 3)); !slices.Equal(got, []string{"a", "b", "z"}) {
		t.Fatalf("first fetch %v", got) // a and b have one running, slow is at its cap
	}
	for _, k := range []string{"s1", "s2", "s3", "u2", "u3", "u4"} {
		fk.enqueue(t, b, "slow", k) // keys whose only job is of the capped task
	}
	for range 3 {
		fk.enqueue(t, b, "fast", "u1")
	}
	fk.enqueue(t, b, "fast", "u5")
	fk.enqueue(t, b, "fast", "u5")
	// the keys' tags in the order named (each backlogged key is in fk)
	tags := b.s.Keys("default").Lane("5|fk")
	for i, k := range []string{"a", "b", "s1", "s2", "s3", "u1", "u2", "u3", "u4", "u5"} {
		must(t, b.s.Redis().ZAdd(b.ctx, tags, redis.Z{Score: float64(i) / 10, Member: k}).Err())
	}
	got := fk.of(fairFetch(t, b, "default", 4))
	// a and b take their last job (then at their cap), the s keys and u2..u4 are passed
	// over, u1 takes one (its tag moves to 1.5), then u5 (tag 0.9) comes before u1
	if !slices.Equal(got, []string{"a", "b", "u1", "u5"}) {
		t.Fatalf("took keys %v, want [a b u1 u5]: u1 was served twice before u5", got)
	}
}

// A random mix of every lease-ending path under a queue cap, a task cap and a per-key
// cap at once, in lru, share and active ranking: after every step the counts equal the
// marks of the leases held, and no cap is exceeded.
func testEdgeMixedCaps(t *testing.T, b *bundle) {
	for _, mode := range []string{"lru", "share", "active-lru"} {
		q := "mix-" + mode
		switch mode {
		case "lru", "active-lru":
			setFair(t, b, q, fairshare.ModeLRU)
		case "share":
			setFair(t, b, q, fairshare.ModeShare)
		}
		if mode == "active-lru" {
			setRankMode(t, b, q)
		}
		setLimit(t, b, q, job.Limit{Scope: job.ScopeQueue, MaxRunning: 7})
		setLimit(t, b, q, job.Limit{Scope: job.ScopeTask, Task: "c", MaxRunning: 3})
		setLimit(t, b, q, job.Limit{Scope: job.ScopeKey, MaxRunning: 2})
		rng := rand.New(rand.NewPCG(9, uint64(len(mode))))
		add := func() {
			key := []string{"", "k1", "k2", "k3"}[rng.IntN(4)]
			task := []string{"c", "d"}[rng.IntN(2)]
			opts := []job.Option{job.Queue(q), job.MaxRetries(3), job.Priority([]int{5, 5, 7}[rng.IntN(3)])}
			if key != "" {
				opts = append(opts, job.FairKey(key))
			}
			enqueue(t, b, task, opts...)
		}
		for range 30 {
			add()
		}
		type held struct {
			f      store.Fetched
			worker string
		}
		var leasesHeld []held
		k := b.s.Keys(q)
		peak := map[string]int{}
		defer func() { t.Logf("%s: peak counts %v", mode, peak) }()
		check := func(step int, what string) {
			t.Helper()
			owners, err := b.s.Redis().HGetAll(b.ctx, k.Owners).Result()
			must(t, err)
			want := map[string]int{}
			for _, o := range owners {
				body, flags, ok := strings.Cut(o, "\x1e")
				if !ok {
					continue
				}
				parts := strings.SplitN(body, "|", 4)
				place := parts[3]
				lane, rest, fair := strings.Cut(place, "\x1f")
				for _, c := range flags {
					switch c {
					case 't':
						want["r:t:"+strings.SplitN(lane[2:], " ", 2)[0]]++
					case 'q':
						want["r:q"]++
					case 'k':
						if fair {
							key, _, _ := strings.Cut(rest, "\x1f")
							want["r:k:"+key]++
						}
					}
				}
			}
			st, err := b.s.Redis().HGetAll(b.ctx, k.LimitState).Result()
			must(t, err)
			got := map[string]int{}
			for f, v := range st {
				if strings.HasPrefix(f, "r:") {
					n, _ := strconv.Atoi(v)
					got[f] = n
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s step %d (%s): counts %v, leases say %v", mode, step, what, got, want)
			}
			for g, n := range want {
				peak[g] = max(peak[g], n)
			}
			if want["r:q"] > 7 || want["r:t:c"] > 3 || want["r:k:k1"] > 2 || want["r:k:k2"] > 2 || want["r:k:k3"] > 2 {
				t.Fatalf("%s step %d (%s): a cap exceeded: %v", mode, step, what, want)
			}
		}
		for step := range 600 {
			op := rng.IntN(10)
			what := ""
			switch {
			case op < 3:
				w := fmt.Sprintf("w%d", rng.IntN(3))
				lease := time.Minute
				if rng.IntN(5) == 0 {
					lease = time.Second
				}
				got, err := b.s.Fetch(b.ctx, q, w, 1+rng.IntN(5), lease)
				must(t, err)
				for _, f := range got {
					leasesHeld = append(leasesHeld, held{f, w})
				}
				what = fmt.Sprintf("fetch %d", len(got))
			case op < 8 && len(leasesHeld) > 0:
				i := rng.IntN(len(leasesHeld))
				h := leasesHeld[i]
				leasesHeld = append(leasesHeld[:i], leasesHeld[i+1:]...)
				switch rng.IntN(5) {
				case 0, 1:
					d := store.Done{ID: h.f.ID, Started: h.f.At, Fair: h.f.Fair}
					_, err := b.s.Ack(b.ctx, q, h.worker, []store.Done{d, d})
					must(t, err)
					what = "ack twice"
				case 2:
					_, err := b.s.FailResult(b.ctx, q, h.worker, store.Failure{ID: h.f.ID, Retry: true, Due: b.clock.Now(), Started: h.f.At})
					must(t, err)
					what = "retry"
				case 3:
					_, err := b.s.FailResult(b.ctx, q, h.worker, store.Failure{ID: h.f.ID, Error: "x", Started: h.f.At})
					must(t, err)
					what = "dead"
				case 4:
					_, err := b.s.HandBack(b.ctx, q, h.worker, []store.Lease{h.f.Lease()})
					must(t, err)
					_, err = b.s.HandBack(b.ctx, q, h.worker, []store.Lease{h.f.Lease()})
					must(t, err)
					what = "hand back twice"
				}
			case op == 8:
				b.clock.Advance(700 * time.Millisecond)
				_, _, err := b.s.ReclaimExpired(b.ctx, q, "lost")
				must(t, err)
				_, _, err = b.s.Promote(b.ctx, q, 100)
				must(t, err)
				what = "reclaim+promote"
			default:
				add()
				what = "enqueue"
			}
			check(step, what)
		}
	}
}

// The default key (jobs without a fair key, stored as "") is counted by a per-key cap
// like any key; Limits lists its use with Key "", the same as the setting's own row.
func testEdgeDefaultKeyRow(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeLRU)
	setLimit(t, b, "default", job.Limit{Scope: job.ScopeKey, MaxRunning: 1})
	enqueue(t, b, "t") // no fair key
	enqueue(t, b, "t")
	if got := fetchIDs(t, b, "default", "w", 5); len(got) != 1 {
		t.Fatalf("fetched %d: keyless jobs share one per-key slot", len(got))
	}
	ls, err := b.s.Limits(b.ctx, "default")
	must(t, err)
	settingRows := 0
	for _, l := range ls {
		if l.Key == "" {
			settingRows++
		}
	}
	if settingRows != 1 {
		t.Fatalf("Limits: %d rows with Key \"\" (the setting, and the default key's use): %+v", settingRows, ls)
	}
}
