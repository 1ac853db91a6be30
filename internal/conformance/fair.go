package conformance

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

func fairCases() []struct {
	name string
	fn   func(t *testing.T, b *bundle)
} {
	return []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"FairLRURoundRobin", testFairLRU},
		{"FairLRUWeights", testFairLRUWeights},
		{"FairShareInWorkerTime", testFairShareTime},
		{"FairAckCorrectsCharge", testFairCorrection},
		{"FairLRUCountsJobsNotTime", testFairLRUCounts},
		{"FairBandsStayStrict", testFairBands},
		{"FairInsideKeyFollowsRanking", testFairInsideKey},
		{"FairBatchEqualsOneByOne", testFairBatch},
		{"FairFollowsTheReferenceOrder", testFairReference},
		{"FairInterleavedBatchSingleModel", testFairInterleaved},
		{"FairEveryPathKeepsInvariants", testFairPaths},
		{"FairIdleKeysReclaimed", testFairReclaim},
		{"FairIdleKeyBanksNoCredit", testFairNoCredit},
		{"FairBadInput", testFairBadInput},
		{"FairKeyView", testFairView},
		{"FairModeOffDrainsFairJobs", testFairModeSwitch},
	}
}

func setFair(t *testing.T, b *bundle, q string, mode fairshare.Mode) {
	t.Helper()
	must(t, b.c.SetFairMode(b.ctx, q, mode))
}

// keyOf is the fair key of a fetched job, read from its record.
func fairFetch(t *testing.T, b *bundle, q string, n int) []store.Fetched {
	t.Helper()
	got, err := b.s.Fetch(b.ctx, q, "w", n, time.Minute)
	must(t, err)
	return got
}

// fairKeys maps job ids to their fair keys, as enqueued.
type fairKeys map[string]string

func (fk fairKeys) enqueue(t *testing.T, b *bundle, task, key string, opts ...job.Option) string {
	t.Helper()
	if key != "" {
		opts = append(opts, job.FairKey(key))
	}
	id := enqueue(t, b, task, opts...).ID
	fk[id] = key
	return id
}

func (fk fairKeys) of(fs []store.Fetched) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = fk[f.ID]
		if out[i] == "" {
			out[i] = "-"
		}
	}
	return out
}

// testFairLRU: lru is round robin over backlogged keys, a key that joins goes ahead of
// the keys served this round, and ties go by key bytes.
func testFairLRU(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeLRU)
	fk := fairKeys{}
	for range 6 {
		fk.enqueue(t, b, "t", "heavy")
	}
	b.clock.Advance(time.Millisecond)
	fk.enqueue(t, b, "t", "light1")
	fk.enqueue(t, b, "t", "light2")
	listed := listedIDs(t, b, job.StatePending)
	if len(listed) != 8 {
		t.Fatalf("listed %d pending jobs, want 8", len(listed))
	}
	for _, id := range listed {
		if _, ok := fk[id]; !ok {
			t.Fatalf("listed %q, not a job", id)
		}
	}
	var got []string
	for range 3 {
		got = append(got, fk.of(fairFetch(t, b, "default", 1))...)
	}
	fk.enqueue(t, b, "t", "late") // joins at V: ahead of heavy, served this round
	for range 5 {
		got = append(got, fk.of(fairFetch(t, b, "default", 1))...)
	}
	equal(t, "lru order", got, []string{"heavy", "light1", "light2", "late", "heavy", "heavy", "heavy", "heavy"})
	invariants(t, b, "default")
}

func testFairLRUWeights(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeLRU)
	must(t, b.c.SetFairWeight(b.ctx, "default", "a", 2))
	fk := fairKeys{}
	for range 10 {
		fk.enqueue(t, b, "t", "a")
		fk.enqueue(t, b, "t", "b")
	}
	got := fk.of(fairFetch(t, b, "default", 9))
	n := strings.Count(strings.Join(got, ","), "a")
	if n != 6 {
		t.Fatalf("weight 2 against 1: %d of 9 jobs to a, want 6 (%v)", n, got)
	}
	invariants(t, b, "default")
}

// testFairShareTime: in share mode a key of 100 ms jobs and a key of 10 ms jobs get
// equal predicted worker time: ten short jobs per long one.
func testFairShareTime(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeShare)
	must(t, b.c.SetPriors(b.ctx, "default", map[string]float64{"long": 100, "short": 10}))
	fk := fairKeys{}
	for range 5 {
		fk.enqueue(t, b, "long", "A")
	}
	for range 40 {
		fk.enqueue(t, b, "short", "B")
	}
	got := fk.of(fairFetch(t, b, "default", 22))
	want := append(append(append([]string{"A"}, repeat("B", 10)...), "A"), repeat("B", 10)...)
	equal(t, "share order", got, want)
	// the same as one fetch at a time, from the same state
	invariants(t, b, "default")
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// testFairCorrection: the ack replaces the charge of a job (its prediction) by its run
// time; a lost lease corrects nothing.
func testFairCorrection(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeShare)
	must(t, b.c.SetPriors(b.ctx, "default", map[string]float64{"t": 10}))
	fk := fairKeys{}
	fk.enqueue(t, b, "t", "A")
	fk.enqueue(t, b, "t", "A")
	fk.enqueue(t, b, "t", "B")
	fk.enqueue(t, b, "t", "B")
	got := fairFetch(t, b, "default", 1)
	k := b.s.Keys("default")
	tag := func(key string) float64 {
		v, err := b.s.Redis().ZScore(b.ctx, k.Lane(fmt.Sprintf("%d|fk", job.DefaultPriority)), key).Result()
		must(t, err)
		return v
	}
	if s := tag("A"); s != 10 {
		t.Fatalf("A's tag after one start: %v, want its 10 ms prediction", s)
	}
	_, err := b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: got[0].ID, Started: got[0].At, Fair: got[0].Fair,
		Sample: store.Sample{Task: "t", Ran: 100 * time.Millisecond}}})
	must(t, err)
	if s := tag("A"); s != 100 {
		t.Fatalf("A's tag after a 100 ms run: %v, want 100", s)
	}
	// the next job is B's: A is 90 ms in debt
	next := fairFetch(t, b, "default", 1)
	equal(t, "after the correction", fk.of(next), []string{"B"})
	// an ack of a lease taken back corrects nothing (B was charged the task's mean,
	// learned from A's run: share learns run times in any ranking mode)
	before := tag("B")
	if before != 100 {
		t.Fatalf("B's tag after its start: %v, want the learned 100 ms", before)
	}
	_, err = b.s.Ack(b.ctx, "default", "other", []store.Done{{ID: next[0].ID, Started: next[0].At, Fair: next[0].Fair,
		Sample: store.Sample{Task: "t", Ran: time.Second}}})
	must(t, err)
	if s := tag("B"); s != before {
		t.Fatalf("B's tag after another worker's ack: %v, want %v", s, before)
	}
	invariants(t, b, "default")
}

func testFairBands(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeShare)
	fk := fairKeys{}
	for range 5 {
		fk.enqueue(t, b, "t", "bulk", job.Priority(3))
	}
	b.clock.Advance(time.Second)
	hi := fk.enqueue(t, b, "t", "bulk", job.Priority(9))
	hi2 := fk.enqueue(t, b, "t", "other", job.Priority(8))
	got := fairFetch(t, b, "default", 3)
	if got[0].ID != hi || got[1].ID != hi2 {
		t.Fatalf("bands: got %v, want %s then %s first", fk.of(got), hi, hi2)
	}
	invariants(t, b, "default")
}

// testFairInsideKey: inside a key, the learned order (active mode) puts a short job
// ahead of long ones that arrived before it, within w × prediction; fifo keeps arrival.
func testFairInsideKey(t *testing.T, b *bundle) {
	for _, mode := range []ranking.Mode{ranking.ModeFIFO, ranking.ModeActive} {
		q := "inside-" + string(mode)
		setFair(t, b, q, fairshare.ModeShare)
		must(t, b.c.SetRanking(b.ctx, q, ranking.Config{Mode: mode, Rule: ranking.RuleFixed, W: 2, Alpha: 0.5}))
		must(t, b.c.SetPriors(b.ctx, q, map[string]float64{"long": 1000, "short": 1}))
		var long, short []string
		for range 3 {
			long = append(long, enqueue(t, b, "long", job.Queue(q), job.FairKey("k")).ID)
			b.clock.Advance(time.Millisecond)
		}
		short = append(short, enqueue(t, b, "short", job.Queue(q), job.FairKey("k")).ID)
		var got []string
		for _, f := range fairFetch(t, b, q, 4) {
			got = append(got, f.ID)
		}
		want := append(append([]string{}, long...), short...)
		if mode == ranking.ModeActive {
			want = append(short, long...)
		}
		equal(t, string(mode)+" inside the key", got, want)
		invariants(t, b, q)
	}
}

// testFairBatch: a fetch of n gives the jobs n fetches of one give, from the same
// random state (keys, weights, tasks with predictions, bands, both modes), with the
// same tags left behind.
func testFairBatch(t *testing.T, b *bundle) {
	rng := rand.New(rand.NewPCG(7, 13))
	for round := range 6 {
		mode := []fairshare.Mode{fairshare.ModeLRU, fairshare.ModeShare}[round%2]
		qa, qb := fmt.Sprintf("fa%d", round), fmt.Sprintf("fb%d", round)
		for _, q := range []string{qa, qb} {
			setFair(t, b, q, mode)
			must(t, b.c.SetPriors(b.ctx, q, map[string]float64{"t0": 1, "t1": 7.5, "t2": 30}))
			must(t, b.c.SetFairWeight(b.ctx, q, "k1", 2.5))
			must(t, b.c.SetFairWeight(b.ctx, q, "k3", 0.5))
		}
		nkeys := 2 + rng.IntN(6)
		n := 20 + rng.IntN(60)
		for range n {
			key := fmt.Sprintf("k%d", rng.IntN(nkeys))
			if rng.IntN(5) == 0 {
				key = ""
			}
			task := fmt.Sprintf("t%d", rng.IntN(3))
			prio := 5
			if rng.IntN(6) == 0 {
				prio = 7
			}
			for _, q := range []string{qa, qb} {
				opts := []job.Option{job.Queue(q), job.Priority(prio)}
				if key != "" {
					opts = append(opts, job.FairKey(key))
				}
				enqueue(t, b, task, opts...)
			}
			if rng.IntN(3) == 0 {
				b.clock.Advance(time.Millisecond)
			}
		}
		ids := func(fs []store.Fetched) []string {
			var out []string
			for _, f := range fs {
				out = append(out, recordKey(t, f))
			}
			return out
		}
		for left := n; left > 0; {
			m := 1 + rng.IntN(12)
			batch := ids(fairFetch(t, b, qa, m))
			var single []string
			for range m {
				single = append(single, ids(fairFetch(t, b, qb, 1))...)
			}
			equal(t, fmt.Sprintf("round %d (%s): a batch of %d against one by one", round, mode, m), batch, single)
			left -= len(batch)
			if len(batch) == 0 {
				break
			}
		}
		invariants(t, b, qa)
		invariants(t, b, qb)
	}
}

// recordKey names a fetched job by what it is (task, key, band, due), the same in two
// queues given the same enqueues.
func recordKey(t *testing.T, f store.Fetched) string {
	t.Helper()
	var j job.Job
	j.Options = job.DefaultOptions()
	must(t, store.UnmarshalRecord(f.Record, &j))
	return fmt.Sprintf("%s/%s/%d", f.Lane, j.Options.FairKey, f.Due.UnixMilli())
}

// testFairPaths takes fair-placed jobs through every state change and checks the fair
// sets' invariants after each.
func testFairPaths(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeShare)
	fk := fairKeys{}
	q := "default"
	a1 := fk.enqueue(t, b, "t", "a", job.MaxRetries(3), job.WithBackoff(job.ConstantBackoff(time.Second)))
	fk.enqueue(t, b, "t", "b")
	later := fk.enqueue(t, b, "t", "c", job.In(time.Hour))
	keyed := fk.enqueue(t, b, "t", "d", job.Key("sched-1"))
	invariants(t, b, q)

	// a failed attempt goes back under its key when its retry is due
	got := fairFetch(t, b, q, 1)
	if got[0].ID != a1 {
		t.Fatalf("first fetched %s, want %s", got[0].ID, a1)
	}
	ok, err := b.s.Fail(b.ctx, q, "w", store.Failure{ID: a1, Retry: true, Due: b.clock.Now().Add(time.Second), Error: "x", Started: got[0].At})
	must(t, err)
	if !ok {
		t.Fatal("fail not recorded")
	}
	invariants(t, b, q)
	b.clock.Advance(2 * time.Second)
	_, _, err = b.s.Promote(b.ctx, q, 100)
	must(t, err)
	invariants(t, b, q)

	// reclaimed after its lease ran out; handed back on shutdown
	got = fairFetch(t, b, q, 4)
	if len(got) != 3 {
		t.Fatalf("fetched %d, want 3 (a retried, b, d)", len(got))
	}
	invariants(t, b, q)
	b.clock.Advance(2 * time.Minute)
	n, _, err := b.s.ReclaimExpired(b.ctx, q, "lost")
	must(t, err)
	if n != 3 {
		t.Fatalf("reclaimed %d, want 3", n)
	}
	invariants(t, b, q)
	got = fairFetch(t, b, q, 2)
	var ls []store.Lease
	for _, f := range got {
		ls = append(ls, f.Lease())
	}
	_, err = b.s.HandBack(b.ctx, q, "w", ls)
	must(t, err)
	invariants(t, b, q)

	// replaced under its schedule key, canceled, deleted, promoted
	keyed2 := fk.enqueue(t, b, "t", "d", job.Key("sched-1"))
	if c := counts(t, b, q); c.Pending != 3 {
		t.Fatalf("after replacing the keyed job: %+v, want 3 pending", c)
	}
	_ = keyed
	invariants(t, b, q)
	must(t, b.c.Cancel(b.ctx, q, keyed2))
	invariants(t, b, q)
	b.clock.Advance(2 * time.Hour)
	_, _, err = b.s.Promote(b.ctx, q, 100)
	must(t, err)
	invariants(t, b, q)
	if c := counts(t, b, q); c.Pending != 3 {
		t.Fatalf("after the promotion of %s: %+v, want 3 pending", later, c)
	}
	must(t, b.c.Delete(b.ctx, q, later))
	invariants(t, b, q)

	// failed for good, requeued; then purged
	got = fairFetch(t, b, q, 10)
	for _, f := range got {
		_, err := b.s.Fail(b.ctx, q, "w", store.Failure{ID: f.ID, Error: "boom", Started: f.At})
		must(t, err)
	}
	invariants(t, b, q)
	moved, err := b.c.Requeue(b.ctx, q)
	must(t, err)
	if moved != len(got) {
		t.Fatalf("requeued %d, want %d", moved, len(got))
	}
	invariants(t, b, q)
	for range 3 {
		fk.enqueue(t, b, "t", "e", job.Priority(2))
	}
	_, err = b.c.Purge(b.ctx, q, job.StatePending, nil)
	must(t, err)
	invariants(t, b, q)
	if c := counts(t, b, q); c.Pending != 0 {
		t.Fatalf("after purge: %+v", c)
	}
	assertFairEmpty(t, b, q)
}

// invariants checks the fair sets of q: the pending count per key equals the jobs in
// the fair sets; every backlogged key has jobs in its band; a band's fair set is in the
// lane index exactly while it holds jobs; every job in a fair set has its record.
func invariants(t *testing.T, b *bundle, q string) {
	t.Helper()
	k := b.s.Keys(q)
	r := b.s.Redis()
	counts := map[string]int{}
	for p := range 10 {
		ref := store.FairRef(p)
		members, err := r.ZRange(b.ctx, k.Lane(ref), 0, -1).Result()
		must(t, err)
		keysWithJobs := map[string]bool{}
		for _, m := range members {
			f := strings.Split(m, "\x1f")
			if len(f) != 5 {
				t.Fatalf("band %d: member %q does not parse", p, m)
			}
			counts[f[0]]++
			keysWithJobs[f[0]] = true
			if ok, _ := r.HExists(b.ctx, k.Records, f[2]).Result(); !ok {
				t.Fatalf("band %d: job %s has no record", p, f[2])
			}
		}
		backlogged, err := r.ZRange(b.ctx, k.Lane(fmt.Sprintf("%d|fk", p)), 0, -1).Result()
		must(t, err)
		for _, key := range backlogged {
			if !keysWithJobs[key] {
				t.Fatalf("band %d: key %q backlogged with no job", p, key)
			}
		}
		for key := range keysWithJobs {
			if _, err := r.ZScore(b.ctx, k.Lane(fmt.Sprintf("%d|fk", p)), key).Result(); err != nil {
				t.Fatalf("band %d: key %q has jobs but is not backlogged", p, key)
			}
		}
		_, err = r.ZScore(b.ctx, k.Index, ref).Result()
		if inIdx := err == nil; inIdx != (len(members) > 0) {
			t.Fatalf("band %d: in the lane index %v, jobs %d", p, inIdx, len(members))
		}
	}
	fn, err := r.ZRangeWithScores(b.ctx, k.FairCount, 0, -1).Result()
	must(t, err)
	got := map[string]int{}
	for _, z := range fn {
		got[z.Member.(string)] = int(z.Score)
	}
	if fmt.Sprint(got) != fmt.Sprint(counts) {
		t.Fatalf("pending per key %v, fair sets hold %v", got, counts)
	}
}

// assertFairEmpty: a queue with no pending fair job keeps no per-key state but its
// configuration.
func assertFairEmpty(t *testing.T, b *bundle, q string) {
	t.Helper()
	k := b.s.Keys(q)
	for p := range 10 {
		for _, m := range []string{store.FairRef(p), fmt.Sprintf("%d|fk", p), fmt.Sprintf("%d|fz", p)} {
			if n, _ := b.s.Redis().Exists(b.ctx, k.Lane(m)).Result(); n != 0 {
				t.Fatalf("%s left behind", m)
			}
		}
	}
	if n, _ := b.s.Redis().Exists(b.ctx, k.FairCount).Result(); n != 0 {
		t.Fatal("pending counts left behind")
	}
	if v, _ := b.s.Redis().HKeys(b.ctx, k.FairVirtual).Result(); len(v) > 0 {
		for _, f := range v {
			if strings.HasPrefix(f, "v:") {
				t.Fatalf("virtual time %s left behind", f)
			}
		}
	}
}

// testFairReclaim: 2,000 keys with a job each, drained and acknowledged, leave nothing
// per key behind but their use, which the trim sweeps once old.
func testFairReclaim(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeShare)
	reqs := make([]jobReq, 2000)
	for i := range reqs {
		reqs[i] = jobReq{task: "t", key: fmt.Sprintf("tenant-%04d", i)}
	}
	bulkFair(t, b, "default", reqs)
	for {
		got := fairFetch(t, b, "default", 100)
		if len(got) == 0 {
			break
		}
		done := make([]store.Done, len(got))
		for i, f := range got {
			done[i] = store.Done{ID: f.ID, Started: f.At, Fair: f.Fair, Sample: store.Sample{Task: "t", Ran: time.Millisecond}}
		}
		_, err := b.s.Ack(b.ctx, "default", "w", done)
		must(t, err)
	}
	assertFairEmpty(t, b, "default")
	k := b.s.Keys("default")
	b.clock.Advance(20 * time.Minute)
	for range 20 {
		_, err := b.s.Trim(b.ctx, "default")
		must(t, err)
	}
	fields, err := b.s.Redis().HKeys(b.ctx, k.FairUse).Result()
	must(t, err)
	if len(fields) > 1 { // "u", the total
		t.Fatalf("after the sweep, %d use fields left (%v…)", len(fields), fields[:min(3, len(fields))])
	}
}

type jobReq struct{ task, key string }

func bulkFair(t *testing.T, b *bundle, q string, reqs []jobReq) {
	t.Helper()
	rs := make([]queue.Request, len(reqs))
	for i, r := range reqs {
		rs[i] = queue.Request{Task: r.task, Options: []job.Option{job.Queue(q), job.FairKey(r.key)}}
	}
	_, err := b.c.EnqueueBatch(b.ctx, rs)
	must(t, err)
}

// testFairNoCredit: a key that was idle while others ran comes back at V, not at its
// old tag: it gets one job ahead, not a burst.
func testFairNoCredit(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeLRU)
	fk := fairKeys{}
	fk.enqueue(t, b, "t", "quiet")
	for range 10 {
		fk.enqueue(t, b, "t", "busy")
	}
	fk.enqueue(t, b, "t", "other")
	fairFetch(t, b, "default", 1) // "busy": byte order at a tie
	fairFetch(t, b, "default", 1) // "other"
	fairFetch(t, b, "default", 1) // "quiet": now idle
	for range 4 {
		fairFetch(t, b, "default", 1) // busy, busy, … (other is idle too)
	}
	for range 3 {
		fk.enqueue(t, b, "t", "quiet")
	}
	got := fk.of(fairFetch(t, b, "default", 4))
	equal(t, "a key back from idle alternates, no burst", got, []string{"quiet", "busy", "quiet", "busy"})
	invariants(t, b, "default")
}

func testFairBadInput(t *testing.T, b *bundle) {
	ctx := b.ctx
	cases := []struct {
		name string
		err  error
		want string
		call func() error
	}{
		{"mode", fairshare.ErrBadMode, `"fast"`, func() error { return b.c.SetFairMode(ctx, "default", "fast") }},
		{"zero weight", fairshare.ErrBadWeight, "0", func() error { return b.c.SetFairWeight(ctx, "default", "k", 0) }},
		{"negative weight", fairshare.ErrBadWeight, "-1", func() error { return b.c.SetFairWeight(ctx, "default", "k", -1) }},
		{"NaN weight", fairshare.ErrBadWeight, "NaN", func() error { return b.c.SetFairWeight(ctx, "default", "k", math.NaN()) }},
		{"Inf weight", fairshare.ErrBadWeight, "+Inf", func() error { return b.c.SetFairWeight(ctx, "default", "k", math.Inf(1)) }},
		{"huge weight", fairshare.ErrBadWeight, "1000", func() error { return b.c.SetFairWeight(ctx, "default", "k", 1000) }},
		{"long key", job.ErrInvalidOption, "FairKey", func() error { return b.c.SetFairWeight(ctx, "default", strings.Repeat("x", 129), 2) }},
		{"control key", job.ErrInvalidOption, "FairKey", func() error { return b.c.SetFairWeight(ctx, "default", "a\x1fb", 2) }},
		{"lateness", fairshare.ErrBadSetting, "-1s", func() error { return b.c.SetFairLateness(ctx, "default", "k", -time.Second) }},
		{"tag", fairshare.ErrBadSetting, `"a=b"`, func() error {
			return b.c.SetFairTags(ctx, "default", "k", map[string]string{"a=b": "c"})
		}},
		{"enqueue key", job.ErrInvalidOption, "FairKey", func() error {
			_, err := b.c.EnqueueByName(ctx, "t", nil, job.FairKey(""))
			return err
		}},
	}
	for _, tc := range cases {
		err := tc.call()
		if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %v naming %s", tc.name, err, tc.err, tc.want)
		}
	}
	k := b.s.Keys("default")
	for _, key := range []string{k.FairConfig, k.FairTags} {
		if n, _ := b.s.Redis().Exists(ctx, key).Result(); n != 0 {
			t.Errorf("a refused setting changed %s", key)
		}
	}
	if m, err := b.c.FairMode(ctx, "default"); err != nil || m != fairshare.ModeOff {
		t.Errorf("mode after a refused switch: %v %v", m, err)
	}
}

func testFairView(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeShare)
	must(t, b.c.SetFairWeight(b.ctx, "default", "big", 3))
	must(t, b.c.SetFairTags(b.ctx, "default", "big", map[string]string{"plan": "gold"}))
	must(t, b.c.SetFairTags(b.ctx, "default", "small", map[string]string{"plan": "gold", "region": "eu"}))
	must(t, b.c.SetFairLateness(b.ctx, "default", "small", time.Minute))
	fk := fairKeys{}
	for range 5 {
		fk.enqueue(t, b, "t", "big")
	}
	fk.enqueue(t, b, "t", "small")
	fk.enqueue(t, b, "t", "")
	got := fairFetch(t, b, "default", 2)
	_, err := b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: got[0].ID, Started: got[0].At, Fair: got[0].Fair,
		Sample: store.Sample{Task: "t", Ran: 30 * time.Millisecond}}})
	must(t, err)
	// taken: the default key's job ("" sorts first at a tie), then big's
	keys, total, err := b.c.FairKeys(b.ctx, "default", 0, 10)
	must(t, err)
	if total != 2 || len(keys) != 2 || keys[0].Key != "big" || keys[0].Pending != 4 || keys[1].Key != "small" {
		t.Fatalf("keys %d %+v", total, keys)
	}
	big := keys[0]
	if big.Weight != 3 || big.Tags["plan"] != "gold" || big.LastServed.IsZero() || big.Running != 1 {
		t.Fatalf("big: %+v", big)
	}
	def, err := b.c.FairKey(b.ctx, "default", store.DefaultFairKey)
	must(t, err)
	if def.Pending != 0 || def.UsedMs != 30 || def.Share != 1 {
		t.Fatalf("the default key: %+v", def)
	}
	small, err := b.c.FairKey(b.ctx, "default", "small")
	must(t, err)
	if small.LateBy != time.Minute || small.Tags["region"] != "eu" {
		t.Fatalf("small: %+v", small)
	}
	tagged, err := b.c.FairKeysTagged(b.ctx, "default", "plan", "gold", 10)
	must(t, err)
	equal(t, "tagged plan=gold", tagged, []string{"big", "small"})
	// a job of small without SkipIfLate of its own gets the key's
	h := enqueue(t, b, "t", job.FairKey("small"))
	j, err := h.Job(b.ctx)
	must(t, err)
	if j.Options.LateBy != time.Minute {
		t.Fatalf("small's job LateBy %v, want the key's minute", j.Options.LateBy)
	}
}

// testFairModeSwitch: jobs placed in fair sets drain after the queue turns fairness
// off, and new jobs go to lanes again; nothing is lost or run twice.
func testFairModeSwitch(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeLRU)
	fk := fairKeys{}
	var all []string
	for i := range 6 {
		all = append(all, fk.enqueue(t, b, "t", fmt.Sprintf("k%d", i%2)))
	}
	setFair(t, b, "default", fairshare.ModeOff)
	b.clock.Advance(time.Millisecond)
	for range 3 {
		all = append(all, fk.enqueue(t, b, "t", "k0"))
	}
	seen := map[string]bool{}
	for {
		got := fairFetch(t, b, "default", 2)
		if len(got) == 0 {
			break
		}
		for _, f := range got {
			if seen[f.ID] {
				t.Fatalf("%s fetched twice", f.ID)
			}
			seen[f.ID] = true
		}
	}
	if len(seen) != len(all) {
		t.Fatalf("fetched %d of %d", len(seen), len(all))
	}
	invariants(t, b, "default")
	assertFairEmpty(t, b, "default")
}

// testFairLRUCounts: lru counts jobs: a key whose jobs ran long is not held back.
func testFairLRUCounts(t *testing.T, b *bundle) {
	setFair(t, b, "default", fairshare.ModeLRU)
	fk := fairKeys{}
	for range 3 {
		fk.enqueue(t, b, "t", "slow")
		fk.enqueue(t, b, "t", "fast")
	}
	var got []string
	for range 4 {
		fs := fairFetch(t, b, "default", 1)
		got = append(got, fk.of(fs)...)
		ran := time.Millisecond
		if fk[fs[0].ID] == "slow" {
			ran = time.Second
		}
		_, err := b.s.Ack(b.ctx, "default", "w", []store.Done{{ID: fs[0].ID, Started: fs[0].At, Fair: fs[0].Fair, Sample: store.Sample{Task: "t", Ran: ran}}})
		must(t, err)
	}
	equal(t, "lru alternates whatever the run times", got, []string{"fast", "slow", "fast", "slow"})
	invariants(t, b, "default")
}

// testFairReference holds the fetch script to ranking/fairshare's Model, the reference
// order whose bound TestStartTimeFairBound checks: random arrivals of keys with
// weights and tasks of different predictions, fetched one at a time, in both modes.
func testFairReference(t *testing.T, b *bundle) {
	// the last round's jobs are far shorter than the quantum: several go per visit, and
	// fetches of up to 4 must take them in the model's order too
	rounds := []struct {
		mode   fairshare.Mode
		priors map[string]float64
		batch  int
	}{
		{fairshare.ModeLRU, map[string]float64{"t0": 1, "t1": 7.5, "t2": 30}, 1},
		{fairshare.ModeShare, map[string]float64{"t0": 1, "t1": 7.5, "t2": 30}, 1},
		{fairshare.ModeShare, map[string]float64{"t0": 1, "t1": 7.5, "t2": 30}, 1},
		{fairshare.ModeShare, map[string]float64{"t0": 0.05, "t1": 0.3, "t2": 2}, 4},
	}
	for round, rd := range rounds {
		mode, priors := rd.mode, rd.priors
		rng := rand.New(rand.NewPCG(uint64(round), 99))
		q := fmt.Sprintf("ref%d", round)
		setFair(t, b, q, mode)
		must(t, b.c.SetPriors(b.ctx, q, priors))
		model, err := fairshare.NewModel(mode)
		must(t, err)
		randomWeights(t, b, rng, model, 5, q)
		heads := map[string][]string{} // key -> tasks of its pending jobs, in order
		for step := range 400 {
			if rng.IntN(2) == 0 {
				key := fmt.Sprintf("k%d", rng.IntN(5))
				task := fmt.Sprintf("t%d", rng.IntN(3))
				enqueue(t, b, task, job.Queue(q), job.FairKey(key))
				b.clock.Advance(time.Millisecond)
				model.Arrive(key)
				heads[key] = append(heads[key], task)
				continue
			}
			got := fairFetch(t, b, q, 1+rng.IntN(rd.batch))
			for i, f := range got {
				want, ok := model.Next()
				if !ok {
					t.Fatalf("round %d step %d: fetched job %d, the model has none", round, step, i+1)
				}
				var j job.Job
				j.Options = job.DefaultOptions()
				must(t, store.UnmarshalRecord(f.Record, &j))
				if j.Options.FairKey != want {
					t.Fatalf("round %d (%s) step %d job %d: fetched a job of %s, the model starts %s", round, mode, step, i+1, j.Options.FairKey, want)
				}
				model.Start(priors[heads[want][0]])
				heads[want] = heads[want][1:]
			}
			if len(got) == 0 {
				if want, ok := model.Next(); ok {
					t.Fatalf("round %d step %d: fetched nothing, the model has %s next", round, step, want)
				}
			}
		}
		invariants(t, b, q)
	}
}

// testFairInterleaved: arrivals interleaved with fetches, so keys run dry and come back
// mid-run. One queue is fetched in batches of up to 6, a twin one job at a time, and
// both must start the keys fairshare.Model starts, in its order, in share mode with
// jobs far shorter than the quantum (several per visit) and in lru.
func testFairInterleaved(t *testing.T, b *bundle) {
	keyOf := func(f store.Fetched) string {
		var j job.Job
		j.Options = job.DefaultOptions()
		must(t, store.UnmarshalRecord(f.Record, &j))
		return j.Options.FairKey
	}
	cases := []struct {
		mode   fairshare.Mode
		priors map[string]float64
	}{
		{fairshare.ModeShare, map[string]float64{"t0": 0.05, "t1": 0.3, "t2": 2}},
		{fairshare.ModeShare, map[string]float64{"t0": 0.2, "t1": 0.45, "t2": 0.9}},
		{fairshare.ModeShare, map[string]float64{"t0": 0.005, "t1": 1, "t2": 7.5}},
		{fairshare.ModeLRU, map[string]float64{"t0": 1, "t1": 7.5, "t2": 30}},
	}
	for round, tc := range cases {
		for seed := uint64(0); seed < 3; seed++ {
			rng := rand.New(rand.NewPCG(seed, uint64(round)))
			qa, qb := fmt.Sprintf("il%d-%d-batch", round, seed), fmt.Sprintf("il%d-%d-one", round, seed)
			model, err := fairshare.NewModel(tc.mode)
			must(t, err)
			for _, q := range []string{qa, qb} {
				setFair(t, b, q, tc.mode)
				must(t, b.c.SetPriors(b.ctx, q, tc.priors))
			}
			randomWeights(t, b, rng, model, 4, qa, qb)
			heads := map[string][]string{} // key -> tasks of its pending jobs, in order
			for step := range 200 {
				if rng.IntN(2) == 0 {
					key := fmt.Sprintf("k%d", rng.IntN(4))
					for range 1 + rng.IntN(3) {
						task := fmt.Sprintf("t%d", rng.IntN(3))
						for _, q := range []string{qa, qb} {
							enqueue(t, b, task, job.Queue(q), job.FairKey(key))
						}
						model.Arrive(key)
						heads[key] = append(heads[key], task)
					}
					b.clock.Advance(time.Millisecond)
					continue
				}
				m := 1 + rng.IntN(6)
				var batch, one, want []string
				for _, f := range fairFetch(t, b, qa, m) {
					batch = append(batch, keyOf(f))
				}
				for range m {
					for _, f := range fairFetch(t, b, qb, 1) {
						one = append(one, keyOf(f))
					}
				}
				for range m {
					k, ok := model.Next()
					if !ok {
						break
					}
					want = append(want, k)
					model.Start(tc.priors[heads[k][0]])
					heads[k] = heads[k][1:]
				}
				if !slices.Equal(batch, want) || !slices.Equal(one, want) {
					t.Fatalf("%s round %d seed %d step %d, fetch of %d:\n batch      %v\n one by one %v\n model      %v",
						tc.mode, round, seed, step, m, batch, one, want)
				}
			}
			invariants(t, b, qa)
			invariants(t, b, qb)
		}
	}
}

// randomWeights gives keys k0..k<n-1> random weights, the same in the model and in
// each of queues.
func randomWeights(t *testing.T, b *bundle, rng *rand.Rand, model *fairshare.Model, n int, queues ...string) {
	t.Helper()
	for i := range n {
		key := fmt.Sprintf("k%d", i)
		w := []float64{0.5, 1, 2, 3}[rng.IntN(4)]
		for _, q := range queues {
			must(t, b.c.SetFairWeight(b.ctx, q, key, w))
		}
		must(t, model.SetWeight(key, w))
	}
}
