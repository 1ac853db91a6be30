package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
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
