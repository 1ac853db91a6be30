package beat_test

import (
	"context"
	"testing"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/queue"
)

// FuzzStoredEntry: whatever a stored entry holds (an older version's, one edited by
// hand, a damaged one), a beat lists and ticks without an error or a panic: an entry
// that does not decode or compile is listed with its reason, and the others are
// listed with their next run.
func FuzzStoredEntry(f *testing.F) {
	for _, s := range []string{
		`{"name":"a","spec":"@every 1m","task":"t"}`,
		`{"name":"a","spec":"0 2 * * *","time_zone":"Europe/Berlin","task":"ml.retrain","args":"gaVtb2RlbKZyYW5rZXI=","queue":"default","priority":7,"retries":3,"timeout":7200000000000,"overlap":"skip","catch_up":"all","catch_up_limit":100}`,
		`{"name":"a","spec":"@every 1m","task":"t","args":"wQ=="}`, `{"name":"a","spec":"@every 1m","task":"t","queue":"nowhere"}`,
		`{"name":"b","spec":"@every 1m","task":"t"}`, `{"name":"","spec":"@every 1m","task":"t"}`, `{"name":"a"}`,
		`{"name":"a","spec":"@every 1m","task":"t","timeout":-1}`, `{"name":"a","spec":"@every 1m","task":"t","disabled":true}`,
		`{"name":"a","spec":"* * * * * *","task":"t","catch_up":"all","catch_up_limit":1000}`, `null`, `[]`, `{`, ``, `"a"`,
	} {
		f.Add("a", s)
	}
	rdb := redistest.Client(f)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := testutil.NewClock(start)
	c := queue.NewClient(rdb, queue.Config{Now: clock.Now, Logger: quiet})
	f.Cleanup(func() { _ = c.Close() })
	b, err := beat.New(c, beat.Config{Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, name, data string) {
		clock.Set(start)
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.DeclareQueue(ctx, "default"); err != nil {
			t.Fatal(err)
		}
		if err := rdb.HSet(ctx, "chronoq:beat:entries", name, data).Err(); err != nil {
			t.Fatal(err)
		}
		list, err := b.List(ctx)
		if err != nil {
			t.Fatalf("List over %q = %q: %v", name, data, err)
		}
		if len(list) != 1 {
			t.Fatalf("List over one stored entry %q = %q: %d entries", name, data, len(list))
		}
		st := list[0]
		if _, err := beat.NextRun(st.Entry, clock.Now()); (err == nil) == (st.Error != "") {
			t.Fatalf("List over %q = %q: %+v, but NextRun says %v", name, data, st, err)
		}
		if _, err := b.Tick(ctx); err != nil && st.Error != "" {
			t.Fatalf("Tick over the broken entry %q = %q: %v", name, data, err)
		}
		clock.Advance(time.Hour)
		_, _ = b.Tick(ctx) // later ticks, with the entry's progress stored
	})
}
