package conformance

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/queue"
	"github.com/redis/go-redis/v9"
)

func beatCases() []struct {
	name string
	fn   func(t *testing.T, b *bundle)
} {
	return []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"BeatKeysConstantOverTicks", testBeatKeysConstant},
		{"BeatReplicasFireEachTickOnce", testBeatReplicasOnce},
		{"BeatChangeFromLaggingClockReplaysNothing", testBeatLaggingChange},
		{"BeatDeleteLeavesNoProgress", testBeatDeleteForgets},
		{"BeatMoveLeavesNoProgress", testBeatMoveForgets},
	}
}

var beatQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// beatReplica is a beat process of its own: its own client on the bundle's Redis, on
// the bundle's clock shifted by skew.
func beatReplica(t *testing.T, b *bundle, skew time.Duration, entries ...beat.Entry) *beat.Beat {
	t.Helper()
	c := queue.NewClient(b.s.Redis(), queue.Config{Now: func() time.Time { return b.clock.Now().Add(skew) }, Logger: beatQuiet})
	t.Cleanup(func() { _ = c.Close() })
	bt, err := beat.New(c, beat.Config{Entries: entries, Logger: beatQuiet})
	must(t, err)
	must(t, bt.Start(b.ctx))
	return bt
}

func beatTick(t *testing.T, b *bundle, bs ...*beat.Beat) {
	t.Helper()
	var wg sync.WaitGroup
	for _, bt := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := bt.Tick(b.ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// keyCount counts every key, on every master of a cluster.
func keyCount(t *testing.T, b *bundle) int64 {
	t.Helper()
	if cc, ok := b.s.Redis().(*redis.ClusterClient); ok {
		var n atomic.Int64
		must(t, cc.ForEachMaster(b.ctx, func(ctx context.Context, m *redis.Client) error {
			k, err := m.DBSize(ctx).Result()
			n.Add(k)
			return err
		}))
		return n.Load()
	}
	n, err := b.s.Redis().DBSize(b.ctx).Result()
	must(t, err)
	return n
}

// beatFields lists the fields of queue's beat progress hash.
func beatFields(t *testing.T, b *bundle, q string) []string {
	t.Helper()
	f, err := b.s.Redis().HKeys(b.ctx, b.s.Namespace()+":{"+q+"}:beat").Result()
	must(t, err)
	return f
}

// A fired tick used to leave a claim key for a day: an @every 1s entry kept 86,400 of
// them. The claim is the entry's progress mark now, one hash field whatever the ticks.
func testBeatKeysConstant(t *testing.T, b *bundle) {
	must(t, b.c.DeclareQueue(b.ctx, "default"))
	bt := beatReplica(t, b, 0, beat.Entry{Name: "every-second", Spec: "@every 1s", Task: "t"})
	beatTick(t, b, bt) // the entry starts now
	b.clock.Advance(time.Second)
	beatTick(t, b, bt) // the first job: the queue's keys exist from here on
	before := keyCount(t, b)
	for range 1000 {
		b.clock.Advance(time.Second)
		beatTick(t, b, bt)
	}
	if n := counts(t, b, "default").Pending; n != 1001 {
		t.Fatalf("%d jobs for 1001 ticks", n)
	}
	if after := keyCount(t, b); after != before {
		t.Fatalf("%d keys after 1000 more ticks, %d before", after, before)
	}
	equal(t, "beat progress fields", sortedStrings(beatFields(t, b, "default")), []string{"every-second|job", "every-second|last"})
}

// Three replicas, ticking at once, with ticks piling up between looks (catch-up all):
// every tick fires once.
func testBeatReplicasOnce(t *testing.T, b *bundle) {
	must(t, b.c.DeclareQueue(b.ctx, "default"))
	entry := beat.Entry{Name: "every-second", Spec: "@every 1s", Task: "t", CatchUp: beat.CatchUpAll, CatchUpLimit: 100}
	rs := []*beat.Beat{beatReplica(t, b, 0, entry), beatReplica(t, b, 0, entry), beatReplica(t, b, 0, entry)}
	beatTick(t, b, rs...)
	total := 0
	for i := range 200 {
		step := 1 + i%3 // 1, 2 or 3 ticks due at each look
		b.clock.Advance(time.Duration(step) * time.Second)
		total += step
		beatTick(t, b, rs...)
	}
	if n := counts(t, b, "default").Pending; n != int64(total) {
		t.Fatalf("%d jobs for %d ticks", n, total)
	}
}

// A change stored by a process whose clock lags must not move the entry's progress back
// over a tick already fired: that tick would fire again.
func testBeatLaggingChange(t *testing.T, b *bundle) {
	must(t, b.c.DeclareQueue(b.ctx, "default"))
	entry := beat.Entry{Name: "every-minute", Spec: "* * * * *", Task: "t"}
	a := beatReplica(t, b, 0, entry)
	lagging := beatReplica(t, b, -5*time.Second)
	beatTick(t, b, a)
	b.clock.Advance(time.Minute)
	beatTick(t, b, a) // fires the tick of now
	p := 7
	changed := entry
	changed.Priority = &p
	must(t, lagging.Set(b.ctx, changed)) // stored "5 s ago"
	beatTick(t, b, a, lagging)
	if n := counts(t, b, "default").Pending; n != 1 {
		t.Fatalf("%d jobs after a change from a lagging clock, want 1 (the tick fired once)", n)
	}
	b.clock.Advance(time.Minute)
	beatTick(t, b, a, lagging)
	if n := counts(t, b, "default").Pending; n != 2 {
		t.Fatalf("%d jobs a minute later, want 2", n)
	}
}

// Deleting an entry removes its progress (last tick, last job) from its queue's beat
// hash, and the progress of an entry that no longer decodes from every queue.
func testBeatDeleteForgets(t *testing.T, b *bundle) {
	for _, q := range []string{"default", "other"} {
		must(t, b.c.DeclareQueue(b.ctx, q))
	}
	bt := beatReplica(t, b, 0,
		beat.Entry{Name: "gone", Spec: "@every 1s", Task: "t"},
		beat.Entry{Name: "kept", Spec: "@every 1s", Task: "t"})
	beatTick(t, b, bt)
	b.clock.Advance(time.Second)
	beatTick(t, b, bt)
	equal(t, "progress", sortedStrings(beatFields(t, b, "default")), []string{"gone|job", "gone|last", "kept|job", "kept|last"})
	must(t, bt.Delete(b.ctx, "gone"))
	equal(t, "progress after deleting gone", sortedStrings(beatFields(t, b, "default")), []string{"kept|job", "kept|last"})
	must(t, bt.Delete(b.ctx, "kept"))
	if f := beatFields(t, b, "default"); len(f) != 0 {
		t.Errorf("beat progress %v of deleted entries", f)
	}
	// an entry that no longer decodes is deleted with its progress, wherever it is
	must(t, b.s.Redis().HSet(b.ctx, b.s.Namespace()+":beat:entries", "broken", "{not json").Err())
	must(t, b.s.Redis().HSet(b.ctx, b.s.Namespace()+":{other}:beat", "broken|last", "1", "broken|job", "x").Err())
	must(t, bt.Delete(b.ctx, "broken"))
	if f := beatFields(t, b, "other"); len(f) != 0 {
		t.Errorf("a deleted broken entry keeps beat progress %v", f)
	}
	st, err := bt.List(b.ctx)
	must(t, err)
	if len(st) != 0 {
		t.Fatalf("entries left after deleting all: %+v", st)
	}
}

// An entry moved to another queue leaves no progress in the old one, and a tick fired
// in the old queue does not fire again in the new one.
func testBeatMoveForgets(t *testing.T, b *bundle) {
	for _, q := range []string{"default", "other"} {
		must(t, b.c.DeclareQueue(b.ctx, q))
	}
	entry := beat.Entry{Name: "moving", Spec: "* * * * *", Task: "t"}
	bt := beatReplica(t, b, 0, entry)
	lagging := beatReplica(t, b, -5*time.Second)
	beatTick(t, b, bt)
	b.clock.Advance(time.Minute)
	beatTick(t, b, bt)
	entry.Queue = "other"
	must(t, lagging.Set(b.ctx, entry)) // from a clock behind the tick just fired
	beatTick(t, b, bt, lagging)
	if f := beatFields(t, b, "default"); len(f) != 0 {
		t.Errorf("the old queue keeps beat progress %v", f)
	}
	if n := counts(t, b, "other").Pending; n != 0 {
		t.Fatalf("the moved entry fired its last tick again: %d jobs in other", n)
	}
	b.clock.Advance(time.Minute)
	beatTick(t, b, bt, lagging)
	if a, o := counts(t, b, "default").Pending, counts(t, b, "other").Pending; a != 1 || o != 1 {
		t.Fatalf("%d jobs in default, %d in other, want 1 and 1", a, o)
	}
	equal(t, "progress in other", sortedStrings(beatFields(t, b, "other")), []string{"moving|job", "moving|last"})
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
