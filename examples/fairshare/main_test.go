package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/queue"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestFairShareExample(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	var out bytes.Buffer
	res, err := run(ctx, rdb, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Logf("\n%s", out.String())
	for _, want := range []string{"  off  ", "  share  ", "with share, requests waited", "keys tagged plan=premium: [export-globex]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}

	// nothing lost: every job the run enqueued succeeded, and nothing is left
	c := queue.NewClient(rdb, queue.Config{})
	defer c.Close()
	for q, want := range map[string]int64{
		appQueue:    2*importJobs + int64(res.Off.Requests+res.Share.Requests),
		exportQueue: 2 * exportJobs,
	} {
		n, err := c.Counts(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if n.Succeeded != want || n.Failed != 0 || n.Pending+n.Scheduled+n.Active != 0 {
			t.Errorf("queue %s: counts %+v, want %d succeeded and nothing left", q, n, want)
		}
	}
	if res.Off.Requests == 0 || res.Share.Requests == 0 {
		t.Fatalf("no requests ran beside the import: off %d, share %d", res.Off.Requests, res.Share.Requests)
	}

	// Off, a request waits behind the rest of the import (about 2 s at p99); with share
	// it waits for a free slot (a few ms). A factor of 4 leaves room for a loaded machine.
	if res.Share.WaitP99*4 > res.Off.WaitP99 {
		t.Errorf("requests' p99 wait: share %s, off %s; want share below a quarter of off", res.Share.WaitP99, res.Off.WaitP99)
	}
	// The requests need about a third of one slot of four: the import keeps about 90%
	// of its speed; half is a margin, not a target.
	if res.Share.ImportPerSec < res.Off.ImportPerSec/2 {
		t.Errorf("import with share %.0f jobs/s, off %.0f: want at least half", res.Share.ImportPerSec, res.Off.ImportPerSec)
	}

	// weight 2 gets two jobs of every three while both are backlogged (an order, not a
	// timing: both tenants' jobs take the same time)
	wt := res.Weight
	if ratio := float64(wt.PremiumFirst) / float64(max(wt.StdFirst, 1)); ratio < 1.5 || ratio > 2.7 {
		t.Errorf("of the first %d jobs started, premium %d and standard %d (%.2f : 1), want about 2 : 1",
			exportJobs, wt.PremiumFirst, wt.StdFirst, ratio)
	}
	if !slices.Equal(wt.Tagged, []string{premium}) {
		t.Errorf("keys tagged plan=premium: %v, want [%s]", wt.Tagged, premium)
	}
	weights := map[string]float64{premium: 2, standard: 1}
	plans := map[string]string{premium: "premium", standard: "standard"}
	if len(wt.View) != 2 {
		t.Fatalf("key view %+v, want the two exporting tenants", wt.View)
	}
	for _, k := range wt.View {
		if k.Weight != weights[k.Key] || k.Tags["plan"] != plans[k.Key] {
			t.Errorf("key view of %q: weight %v, tags %v; want weight %v, plan=%s", k.Key, k.Weight, k.Tags, weights[k.Key], plans[k.Key])
		}
		// read a third of the way through, both tenants still had jobs waiting
		if k.Pending == 0 || k.LastServed.IsZero() {
			t.Errorf("key view of %q: pending %d, last served %v; want both backlogged and served", k.Key, k.Pending, k.LastServed)
		}
	}
}
