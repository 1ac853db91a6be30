package beat_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	ctx   context.Context
	rdb   *redis.Client
	clock *testutil.Clock
	c     *queue.Client
}

func newEnv(t *testing.T, start time.Time) *env {
	t.Helper()
	testutil.CheckLeaks(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	rdb := redistest.Client(t)
	clock := testutil.NewClock(start)
	c := queue.NewClient(rdb, queue.Config{Now: clock.Now, Logger: quiet})
	t.Cleanup(func() { _ = c.Close() })
	for _, q := range []string{"default", "ml", "data"} {
		if err := c.DeclareQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return &env{ctx, rdb, clock, c}
}

// replica is another beat process: its own client, the same Redis and clock.
func (e *env) replica(t *testing.T, entries ...beat.Entry) *beat.Beat {
	t.Helper()
	c := queue.NewClient(e.rdb, queue.Config{Now: e.clock.Now, Logger: quiet})
	t.Cleanup(func() { _ = c.Close() })
	b, err := beat.New(c, beat.Config{Entries: entries, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) jobs(t *testing.T, q string) int64 {
	t.Helper()
	c, err := e.c.Counts(e.ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	return c.Pending
}

func tickAll(t *testing.T, e *env, bs ...*beat.Beat) {
	t.Helper()
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Tick(e.ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestThreeReplicasFireEachTickOnce(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 0, 0, 30, 0, time.UTC))
	entry := beat.Entry{Name: "every-minute", Spec: "* * * * *", Task: "sync"}
	a, b, c := e.replica(t, entry), e.replica(t, entry), e.replica(t, entry)
	tickAll(t, e, a, b, c) // the entry starts now
	for i := 0; i < 1000; i++ {
		e.clock.Advance(time.Minute)
		tickAll(t, e, a, b, c)
	}
	if n := e.jobs(t, "default"); n != 1000 {
		t.Fatalf("%d jobs for 1000 ticks", n)
	}
}

func TestReplicaStoppingMidRunLosesNoTick(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 0, 0, 30, 0, time.UTC))
	entry := beat.Entry{Name: "every-minute", Spec: "* * * * *", Task: "sync", CatchUp: beat.CatchUpAll, CatchUpLimit: 100}
	a, b := e.replica(t, entry), e.replica(t, entry)
	tickAll(t, e, a, b)
	for i := 0; i < 300; i++ {
		e.clock.Advance(time.Minute)
		switch {
		case i < 100:
			tickAll(t, e, a, b)
		case i < 110:
			// a dies; b is slow to notice: ticks pile up for 10 minutes
		default:
			tickAll(t, e, b)
		}
	}
	if n := e.jobs(t, "default"); n != 300 {
		t.Fatalf("%d jobs for 300 ticks", n)
	}
}

// A 02:30 entry fires once a day, on spring-forward and fall-back days too, in two zones
// with different DST dates.
func TestDSTDaysInTwoZones(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	e := newEnv(t, start)
	zones := []string{"America/New_York", "Europe/Berlin"}
	var entries []beat.Entry
	for i, z := range zones {
		entries = append(entries, beat.Entry{Name: fmt.Sprintf("nightly-%d", i), Spec: "30 2 * * *", TimeZone: z, Task: "nightly", Queue: []string{"ml", "data"}[i]})
	}
	b := e.replica(t, entries...)
	tickAll(t, e, b)
	// two windows around the changes: March 2026 (US 8th, EU 29th), Oct-Nov 2026
	for _, window := range [][2]time.Time{
		{start, time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)},
	} {
		e.clock.Set(window[0])
		_, _ = b.Tick(e.ctx) // the jump between windows: missed ticks skipped
		before := []int64{e.jobs(t, "ml"), e.jobs(t, "data")}
		days := int64(window[1].Sub(window[0]) / (24 * time.Hour))
		for now := window[0]; now.Before(window[1]); now = now.Add(10 * time.Minute) {
			e.clock.Set(now)
			tickAll(t, e, b)
		}
		for i, q := range []string{"ml", "data"} {
			if got := e.jobs(t, q) - before[i]; got != days {
				t.Errorf("%s, %s to %s: %d fires in %d days", zones[i], window[0].Format("01-02"), window[1].Format("01-02"), got, days)
			}
		}
	}
}

func TestCatchUpPolicies(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 0, 0, 30, 0, time.UTC))
	entries := []beat.Entry{
		{Name: "skip", Spec: "* * * * *", Task: "t", Queue: "default", CatchUp: beat.CatchUpSkip},
		{Name: "latest", Spec: "* * * * *", Task: "t", Queue: "ml", CatchUp: beat.CatchUpLatest},
		{Name: "all", Spec: "* * * * *", Task: "t", Queue: "data", CatchUp: beat.CatchUpAll, CatchUpLimit: 5},
	}
	b := e.replica(t, entries...)
	tickAll(t, e, b)
	e.clock.Advance(10 * time.Minute) // every beat was down; 10 ticks missed, one just due
	tickAll(t, e, b)
	for q, want := range map[string]int64{"default": 1, "ml": 2, "data": 6} {
		if n := e.jobs(t, q); n != want {
			t.Errorf("queue %s: %d jobs, want %d", q, n, want)
		}
	}
}

func TestOverlapSkipWhilePreviousJobWaits(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 0, 0, 30, 0, time.UTC))
	b := e.replica(t, beat.Entry{Name: "hourly-sync", Spec: "@every 1h", Task: "sync", Overlap: beat.OverlapSkip})
	tickAll(t, e, b)
	e.clock.Advance(time.Hour)
	tickAll(t, e, b)
	e.clock.Advance(time.Hour) // the first job still waits: skipped
	tickAll(t, e, b)
	if n := e.jobs(t, "default"); n != 1 {
		t.Fatalf("%d jobs, want 1 (the second tick skipped)", n)
	}
	if _, err := e.c.Purge(e.ctx, "default", "pending", nil); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	tickAll(t, e, b)
	if n := e.jobs(t, "default"); n != 1 {
		t.Fatalf("%d jobs after the previous one went, want 1", n)
	}
}

func TestDynamicEntriesSeenByEveryReplica(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 0, 0, 30, 0, time.UTC))
	a, b := e.replica(t), e.replica(t)
	if err := a.Set(e.ctx, beat.Entry{Name: "cleanup", Spec: "*/10 * * * *", Task: "cleanup"}); err != nil {
		t.Fatal(err)
	}
	tickAll(t, e, b)
	e.clock.Advance(10 * time.Minute)
	tickAll(t, e, b) // b never saw a Set call: it reads Redis
	if n := e.jobs(t, "default"); n != 1 {
		t.Fatalf("%d jobs", n)
	}
	if err := b.Disable(e.ctx, "cleanup"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute)
	tickAll(t, e, a, b)
	if n := e.jobs(t, "default"); n != 1 {
		t.Fatalf("disabled entry fired: %d jobs", n)
	}
	st, err := a.List(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || !st[0].Disabled || st[0].LastJob == nil || st[0].LastTick.IsZero() {
		t.Fatalf("status %+v", st)
	}
	if err := a.Delete(e.ctx, "cleanup"); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(e.ctx, "cleanup"); err == nil {
		t.Fatal("deleted twice")
	}
}

func TestBadEntriesNamedAndIsolated(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 0, 0, 30, 0, time.UTC))
	_, err := beat.New(e.c, beat.Config{Logger: quiet, Entries: []beat.Entry{
		{Name: "bad-spec", Spec: "61 * * * *", Task: "t"},
		{Name: "bad-zone", Spec: "@daily", TimeZone: "Mars/Olympus", Task: "t"},
		{Name: "dup", Spec: "@daily", Task: "t"},
		{Name: "dup", Spec: "@daily", Task: "t"},
	}})
	for _, want := range []string{`"bad-spec"`, `"bad-zone"`, "Mars/Olympus", `"dup": defined twice`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %s", err, want)
		}
	}
	if !errors.Is(err, beat.ErrInvalidEntry) {
		t.Fatal(err)
	}
	b := e.replica(t, beat.Entry{Name: "good", Spec: "* * * * *", Task: "t"})
	if err := b.Set(e.ctx, beat.Entry{Name: "nowhere", Spec: "@daily", Task: "t", Queue: "no-such-queue"}); err == nil || !strings.Contains(err.Error(), `"nowhere"`) {
		t.Fatalf("unknown queue: %v", err)
	}
	// an entry broken in Redis (by hand, or by an older version) never stops the others
	if err := e.rdb.HSet(e.ctx, "chronoq:beat:entries", "broken", "{not json").Err(); err != nil {
		t.Fatal(err)
	}
	tickAll(t, e, b)
	e.clock.Advance(time.Minute)
	tickAll(t, e, b)
	if n := e.jobs(t, "default"); n != 1 {
		t.Fatalf("%d jobs from the good entry", n)
	}
	st, _ := b.List(e.ctx)
	found := false
	for _, s := range st {
		found = found || (s.Name == "broken" && s.Error != "")
	}
	if !found {
		t.Fatalf("broken entry not reported: %+v", st)
	}
}

func TestLoadFile(t *testing.T) {
	good := `
entries:
  - name: nightly-retrain
    spec: "0 2 * * *"
    time_zone: Europe/Berlin
    task: ml.retrain
    args: {model: ranker, epochs: 3}
    queue: ml
    priority: 7
    timeout: 2h
    overlap: skip
    catch_up: latest
  - name: hourly-sync
    spec: "@hourly"
    task: data.sync
    queue: data
  - name: cleanup
    spec: "*/10 * * * *"
    task: cleanup
`
	es, err := beat.LoadFile(strings.NewReader(good))
	if err != nil || len(es) != 3 || es[0].Timeout != 2*time.Hour || *es[0].Priority != 7 || len(es[0].Args) == 0 {
		t.Fatalf("%+v %v", es, err)
	}
	bad := `
entries:
  - name: typo
    spec: "@daily"
    task: t
    queu: ml
`
	if _, err := beat.LoadFile(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "queu") {
		t.Fatalf("unknown key: %v", err)
	}
	several := `
entries:
  - {name: a, spec: "99 * * * *", task: t}
  - {name: b, spec: "@daily", task: t, time_zone: Nowhere/Land}
  - {name: c, spec: "@daily", task: t, timeout: soon}
  - {spec: "@daily", task: t}
  - {name: ok, spec: "@daily", task: t}
`
	es, err = beat.LoadFile(strings.NewReader(several))
	for _, want := range []string{`"a"`, `"b"`, `"c"`, "no name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %s", err, want)
		}
	}
	if len(es) != 1 || es[0].Name != "ok" {
		t.Fatalf("the good entry must load beside the bad ones: %+v", es)
	}
}

func TestDSTInstantsAndPrefixes(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	cases := []struct {
		name string
		e    beat.Entry
		from time.Time
		want time.Time
	}{
		// a time in the spring-forward gap is that wall time read at the offset before
		// the gap, in every zone: 02:30 becomes 03:30
		{"NY gap", beat.Entry{Name: "a", Spec: "30 2 * * *", TimeZone: "America/New_York", Task: "t"},
			time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC)},
		{"Berlin gap", beat.Entry{Name: "b", Spec: "30 2 * * *", TimeZone: "Europe/Berlin", Task: "t"},
			time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)},
		// during the repeated fall-back hour a seconds entry keeps firing
		{"NY repeated hour", beat.Entry{Name: "c", Spec: "*/2 * * * * *", TimeZone: "America/New_York", Task: "t"},
			time.Date(2026, 11, 1, 1, 10, 0, 0, ny).Add(time.Hour), time.Date(2026, 11, 1, 6, 10, 2, 0, time.UTC)},
	}
	for _, tc := range cases {
		got, err := beat.NextRun(tc.e, tc.from)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.name, got.UTC(), err, tc.want)
		}
	}
	if _, err := beat.NextRun(beat.Entry{Name: "z", Spec: "CRON_TZ=Asia/Tokyo 0 9 * * *", Task: "t"}, time.Now()); err == nil {
		t.Error("a CRON_TZ prefix must be refused (time_zone says it)")
	}
}

func TestChangesReplayNothing(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 12, 0, 30, 0, time.UTC))
	b := e.replica(t, beat.Entry{Name: "m", Spec: "* * * * *", Task: "t", CatchUp: beat.CatchUpAll, CatchUpLimit: 100})
	tickAll(t, e, b)
	if err := b.Disable(e.ctx, "m"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	tickAll(t, e, b)
	if err := b.Enable(e.ctx, "m"); err != nil {
		t.Fatal(err)
	}
	tickAll(t, e, b)
	if n := e.jobs(t, "default"); n != 0 {
		t.Fatalf("enabling replayed %d disabled ticks", n)
	}
	e.clock.Advance(time.Minute)
	tickAll(t, e, b)
	if n := e.jobs(t, "default"); n != 1 {
		t.Fatalf("%d jobs after a minute enabled", n)
	}
	// a spec change starts the entry afresh too
	if err := b.Set(e.ctx, beat.Entry{Name: "m", Spec: "*/5 * * * *", Task: "t", CatchUp: beat.CatchUpAll, CatchUpLimit: 100}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5 * time.Minute)
	tickAll(t, e, b)
	if n := e.jobs(t, "default"); n != 2 {
		t.Fatalf("%d jobs after the spec change, want 2", n)
	}
}

func TestLongOutageCatchUpLimits(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 12, 0, 0, 500_000_000, time.UTC))
	b := e.replica(t,
		beat.Entry{Name: "latest", Spec: "* * * * * *", Task: "t", Queue: "ml", CatchUp: beat.CatchUpLatest},
		beat.Entry{Name: "all", Spec: "* * * * * *", Task: "t", Queue: "data", CatchUp: beat.CatchUpAll, CatchUpLimit: 10})
	tickAll(t, e, b)
	e.clock.Advance(3 * 24 * time.Hour) // three days down: 259,200 ticks each
	tickAll(t, e, b)
	// the last minute's 60 ticks are due, not missed; of the rest, 1 and 10
	if ml, data := e.jobs(t, "ml"), e.jobs(t, "data"); ml != 61 || data != 70 {
		t.Fatalf("latest fired %d (want 61), all fired %d (want 70)", ml, data)
	}
}

func TestEveryIsAnchoredOnItsLastTick(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
	b := e.replica(t, beat.Entry{Name: "e", Spec: "@every 50s", Task: "t"})
	tickAll(t, e, b) // starts now: 00:00:00
	e.clock.Advance(40 * time.Second)
	next, err := b.Tick(e.ctx)
	if err != nil || !next.Equal(time.Date(2026, 1, 5, 0, 0, 50, 0, time.UTC)) {
		t.Fatalf("next %v %v, want 00:00:50", next, err)
	}
}

func TestRestartingReplicaAnnouncesNothing(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
	entries := []beat.Entry{{Name: "a", Spec: "@hourly", Task: "t"}, {Name: "b", Spec: "@daily", Task: "t"}}
	e.replica(t, entries...)
	ps := e.rdb.Subscribe(e.ctx, "chronoq:beat:ev")
	defer ps.Close()
	if _, err := ps.Receive(e.ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	e.replica(t, entries...) // a replica restarts with the same entries
	e.rdb.Publish(e.ctx, "chronoq:beat:ev", "sentinel")
	msg, err := ps.ReceiveMessage(e.ctx)
	if err != nil || msg.Payload != "sentinel" {
		t.Fatalf("a restart with unchanged entries announced %v %v", msg, err)
	}
}

// TestDeclaredTaskOptionsApply: a beat job gets the options its task's workers
// declared, as an enqueue by name does; the entry's own (its queue always) win.
func TestDeclaredTaskOptionsApply(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 0, 0, 30, 0, time.UTC))
	declared := job.DefaultOptions()
	declared.Queue, declared.Priority, declared.MaxRetries, declared.Timeout = "ml", 6, 7, 2*time.Minute
	if err := clientstore.Of(e.c).SetTaskDefaults(e.ctx, map[string]job.Options{"reports.build": declared}); err != nil {
		t.Fatal(err)
	}
	one := 1
	b := e.replica(t, beat.Entry{Name: "reports", Spec: "@every 1m", Task: "reports.build", Retries: &one})
	tickAll(t, e, b)
	e.clock.Advance(time.Minute)
	tickAll(t, e, b)
	js, err := e.c.List(e.ctx, "default", job.StatePending, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != 1 {
		t.Fatalf("%d jobs in default, want 1 (the entry's queue wins)", len(js))
	}
	o := js[0].Options
	if o.Priority != 6 || o.Timeout != 2*time.Minute || o.MaxRetries != 1 {
		t.Fatalf("options %+v: want the declared priority 6 and timeout 2m, the entry's retries 1", o)
	}
}

// TestLaneAsEnqueued: a beat job with an estimate or a cost hint lands in the lane an
// enqueue with the same options lands in (its size bucket), not in its task's plain lane.
func TestLaneAsEnqueued(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 0, 0, 30, 0, time.UTC))
	s := clientstore.Of(e.c)
	k := s.Keys("default")
	// a queue outside fifo mode whose model of "resize" says run time grows with bytes:
	// 20 samples of run time = bytes/10 ms
	var n, sx, sy, sxx, sxy float64
	for i := range 20 {
		size := float64(100 * (1 + i%10))
		x, y := math.Log1p(size), math.Log(size/10)
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	if err := e.rdb.HSet(e.ctx, k.Rank, "mode", string(ranking.ModeShadow)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.HSet(e.ctx, k.Models, "resize", fmt.Sprintf("bytes|%v|%v|%v|%v|%v", n, sx, sy, sxx, sxy)).Err(); err != nil {
		t.Fatal(err)
	}
	cost := map[string]float64{"bytes": 1e6}
	b := e.replica(t,
		beat.Entry{Name: "resize", Spec: "@every 1m", Task: "resize", Cost: cost},
		beat.Entry{Name: "report", Spec: "@every 1m", Task: "report", Estimate: 5 * time.Minute})
	tickAll(t, e, b)
	e.clock.Advance(time.Minute)
	tickAll(t, e, b)
	if _, err := e.c.EnqueueByName(e.ctx, "resize", nil, job.Cost("bytes", cost["bytes"])); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.EnqueueByName(e.ctx, "report", nil, job.Estimate(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	js, err := e.c.List(e.ctx, "default", job.StatePending, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	lanes := map[string][]string{}
	for _, j := range js {
		rec, err := e.rdb.HGet(e.ctx, k.Records, j.ID).Result()
		if err != nil {
			t.Fatal(err)
		}
		lane, _, _ := strings.Cut(rec, "\n")
		lanes[j.Task] = append(lanes[j.Task], lane)
	}
	for task, bucket := range map[string]string{"resize": " ~", "report": " ="} {
		l := lanes[task]
		if len(l) != 2 || l[0] != l[1] || !strings.Contains(l[0], bucket) {
			t.Errorf("%s: lanes %q, want the beat's job and the enqueued one in one %q size-bucket lane", task, l, bucket)
		}
	}
}

// TestEntryBounds: an entry's retries, timeout and catch-up limit meet the job options'
// bounds when the entry is loaded, instead of failing at every tick.
func TestEntryBounds(t *testing.T) {
	n := func(v int) *int { return &v }
	cases := []struct {
		name string
		e    beat.Entry
		want string // "" means valid
	}{
		{"defaults", beat.Entry{}, ""},
		{"retries at the bound", beat.Entry{Retries: n(job.MaxRetriesLimit)}, ""},
		{"retries over", beat.Entry{Retries: n(job.MaxRetriesLimit + 1)}, "retries 1001 is not between 0 and 1000"},
		{"retries negative", beat.Entry{Retries: n(-1)}, "retries -1"},
		{"timeout a year", beat.Entry{Timeout: job.MaxTimeout}, ""},
		{"timeout max int64", beat.Entry{Timeout: math.MaxInt64}, "timeout 2562047h47m16.854775807s is not between 0 and 8760h0m0s"},
		{"timeout negative", beat.Entry{Timeout: -time.Second}, "timeout -1s"},
		{"catch-up limit negative", beat.Entry{CatchUpLimit: -5}, "catch_up_limit -5 is negative"},
		{"catch-up limit over", beat.Entry{CatchUpLimit: 5000}, "catch_up_limit 5000 is over 1000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e
			e.Name, e.Spec, e.Task = "nightly", "@daily", "reports.build"
			_, err := beat.NextRun(e, time.Now())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, beat.ErrInvalidEntry) || !strings.Contains(err.Error(), `"nightly"`) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalidEntry naming the entry and %q", err, tc.want)
			}
		})
	}
	// from a beat file too, where the entry is named with the others still loaded
	es, err := beat.LoadFile(strings.NewReader("entries:\n  - {name: many, spec: \"@daily\", task: t, retries: 5000}\n  - {name: ok, spec: \"@daily\", task: t}\n"))
	if err == nil || !strings.Contains(err.Error(), `"many": retries 5000`) || len(es) != 1 || es[0].Name != "ok" {
		t.Fatalf("beat file: %+v %v", es, err)
	}
}

// TestLocalZoneRefused: time_zone "Local" is each process's own zone, so replicas in
// different zones would each fire the entry at their own hour (a daily entry over three
// days, with replicas in UTC and New York, made 6 jobs). It is refused wherever an entry
// is checked, naming the entry; no zone still means UTC.
func TestLocalZoneRefused(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 0, 0, 30, 0, time.UTC))
	b := e.replica(t)
	cases := []struct {
		zone string
		want string // "" means valid, with the next @daily run at next
		next time.Time
	}{
		{"Local", `"nightly": time_zone "Local"`, time.Time{}},
		{"local", `"nightly": time_zone "local"`, time.Time{}},
		{"", "", time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)},
		{"UTC", "", time.Date(2026, 1, 6, 0, 0, 0, 0, time.UTC)},
		{"Europe/Berlin", "", time.Date(2026, 1, 5, 23, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run("zone "+tc.zone, func(t *testing.T) {
			entry := beat.Entry{Name: "nightly", Spec: "@daily", TimeZone: tc.zone, Task: "t"}
			check := func(how string, err error) {
				t.Helper()
				if tc.want == "" {
					if err != nil {
						t.Fatalf("%s: unexpected error %v", how, err)
					}
					return
				}
				if !errors.Is(err, beat.ErrInvalidEntry) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `IANA name such as "Europe/Berlin"`) {
					t.Fatalf("%s: error %v, want ErrInvalidEntry naming the entry, %q and an IANA example", how, err, tc.want)
				}
			}
			next, err := beat.NextRun(entry, e.clock.Now())
			check("NextRun", err)
			if tc.want == "" && !next.Equal(tc.next) {
				t.Fatalf("next run %v, want %v", next.UTC(), tc.next)
			}
			_, err = beat.New(e.c, beat.Config{Logger: quiet, Entries: []beat.Entry{entry}})
			check("New", err)
			check("Set", b.Set(e.ctx, entry))
			es, err := beat.LoadFile(strings.NewReader(fmt.Sprintf("entries:\n  - {name: nightly, spec: \"@daily\", task: t, time_zone: %q}\n  - {name: ok, spec: \"@daily\", task: t}\n", tc.zone)))
			check("LoadFile", err)
			if wantN := map[bool]int{true: 2, false: 1}[tc.want == ""]; len(es) != wantN {
				t.Fatalf("LoadFile kept %d entries, want %d", len(es), wantN)
			}
		})
	}
	// an entry stored with "Local" (by an older version) is reported and never fires
	if err := e.rdb.HSet(e.ctx, "chronoq:beat:entries", "stored-local", `{"name":"stored-local","spec":"@every 1m","time_zone":"Local","task":"t","queue":"ml"}`).Err(); err != nil {
		t.Fatal(err)
	}
	tickAll(t, e, b)
	e.clock.Advance(time.Minute)
	tickAll(t, e, b)
	if n := e.jobs(t, "ml"); n != 0 {
		t.Fatalf("the stored Local entry fired %d jobs", n)
	}
	st, err := b.List(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range st {
		found = found || (s.Name == "stored-local" && strings.Contains(s.Error, `time_zone "Local"`))
	}
	if !found {
		t.Fatalf("the stored Local entry is not reported: %+v", st)
	}
}

// TestYearLongOutage: after a year with every beat down, one Tick fires what the
// catch-up policies say (the work is bounded by them: see TestLongOutageBoundedWork),
// and List gives the next run from now.
func TestYearLongOutage(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 12, 0, 0, 500_000_000, time.UTC))
	b := e.replica(t,
		beat.Entry{Name: "every", Spec: "@every 1s", Task: "t", Queue: "ml", CatchUp: beat.CatchUpAll, CatchUpLimit: 10},
		beat.Entry{Name: "cron", Spec: "* * * * * *", TimeZone: "America/New_York", Task: "t", Queue: "data", CatchUp: beat.CatchUpLatest})
	tickAll(t, e, b)
	e.clock.Advance(365 * 24 * time.Hour)
	tickAll(t, e, b)
	if ml, data := e.jobs(t, "ml"), e.jobs(t, "data"); ml != 70 || data != 61 {
		t.Fatalf("all fired %d (want 70), latest fired %d (want 61)", ml, data)
	}
	st, err := b.List(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if want := e.clock.Now().Truncate(time.Second).Add(time.Second); !s.Next.Equal(want) {
			t.Errorf("%s: next run %v, want %v", s.Name, s.Next, want)
		}
	}
}

// TestLoadFileEstimateAndCost: a beat file's estimate and cost reach the entry; a bad
// estimate names its entry.
func TestLoadFileEstimateAndCost(t *testing.T) {
	es, err := beat.LoadFile(strings.NewReader("entries:\n  - {name: r, spec: '@hourly', task: t, estimate: 40m, cost: {rows: 1000000}}\n"))
	if err != nil || len(es) != 1 || es[0].Estimate != 40*time.Minute || es[0].Cost["rows"] != 1e6 {
		t.Fatalf("%+v %v", es, err)
	}
	_, err = beat.LoadFile(strings.NewReader("entries:\n  - {name: r, spec: '@hourly', task: t, estimate: soon}\n"))
	if !errors.Is(err, beat.ErrInvalidEntry) || !strings.Contains(err.Error(), `"r": estimate "soon"`) {
		t.Fatalf("bad estimate: %v", err)
	}
	_, err = beat.LoadFile(strings.NewReader("entries:\n  - {name: r, spec: '@hourly', task: t, estimate: -1s}\n"))
	if !errors.Is(err, beat.ErrInvalidEntry) {
		t.Fatalf("negative estimate: %v", err)
	}
}
