package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
)

// A worker may hold up to 10,000 jobs of one queue (worker.MaxConcurrency): renewing and
// handing back that many leases must not exceed what a script's unpack takes (about
// 8,000 values: 4,000 leases in one ZADD).
func TestManyLeasesRenewAndHandBack(t *testing.T) {
	ctx := context.Background()
	s := New(redistest.Client(t), "t", nil)
	for _, n := range []int{3999, 4001, 8001} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			jobs := make([]NewJob, n)
			for i := range jobs {
				jobs[i] = NewJob{ID: fmt.Sprintf("j%d-%05d", n, i), Lane: "5:x", Record: []byte("r")}
			}
			if err := s.Enqueue(ctx, fmt.Sprint("q", n), jobs); err != nil {
				t.Fatal(err)
			}
			var leases []Lease
			for len(leases) < n {
				got, err := s.Fetch(ctx, fmt.Sprint("q", n), "w", 1000, time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range got {
					leases = append(leases, f.Lease())
				}
			}
			lost, stop, err := s.RenewLeases(ctx, fmt.Sprint("q", n), "w", leases, time.Minute)
			if err != nil {
				t.Fatalf("renewing %d leases: %v", n, err)
			}
			if len(lost) != 0 || len(stop) != 0 {
				t.Fatalf("renewing %d leases held: %d lost, %d to stop", n, len(lost), len(stop))
			}
			if m, err := s.HandBack(ctx, fmt.Sprint("q", n), "w", leases); err != nil || m != n {
				t.Fatalf("hand back of %d leases moved %d: %v", n, m, err)
			}
		})
	}
}

// Jobs enqueued in the same ms in different lanes go by id. A batch fetch that takes a
// job first, then meets a tie whose lanes it partly lacks, must not skip the unknown
// tied lanes (one-by-one fetches would learn them and take the smallest id).
func TestBatchFetchKeepsIDOrderAcrossUnknownTiedLanes(t *testing.T) {
	ctx := context.Background()
	clock := testutil.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	rdb := redistest.Client(t)
	prod := New(rdb, "t", clock.Now)
	if err := prod.Enqueue(ctx, "q", []NewJob{{ID: "a0", Lane: "5:a", Record: []byte("r")}, {ID: "a00", Lane: "5:a", Record: []byte("r"), Due: clock.Now().Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Millisecond)
	// same ms, ids in creation order j1 < j2 < j3 < j4; lane names in another order
	if err := prod.Enqueue(ctx, "q", []NewJob{
		{ID: "j1", Lane: "5:zz", Record: []byte("r")},
		{ID: "j2", Lane: "5:d", Record: []byte("r")},
		{ID: "j3", Lane: "5:c", Record: []byte("r")},
		{ID: "j4", Lane: "5:b", Record: []byte("r")},
		{ID: "x", Lane: "5:a", Record: []byte("r"), Due: clock.Now().Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	// the worker's store has used lanes a, b, c lately (not d, zz: new task types)
	w := New(rdb, "t", clock.Now)
	w.useLanes("q", "5:a", "5:b", "5:c")
	got, err := w.Fetch(ctx, "q", "w", 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, f := range got {
		ids = append(ids, f.ID)
	}
	if len(ids) != 2 || ids[1] != "j1" {
		t.Fatalf("batch fetch took %v; one-by-one fetches take [a0 j1]", ids)
	}
}
