package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

func TestSeedScheduleFileAndGoAgree(t *testing.T) {
	f, err := os.Open("beat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fromFile, err := beat.LoadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	// the day before Berlin springs forward: 02:00 does not exist that night, and the
	// retrain runs at the first instant after the gap, 03:00 CEST
	now := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)
	for i, e := range Entries() {
		a, err := beat.NextRun(e, now)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := beat.NextRun(fromFile[i], now)
		if fromFile[i].Name != e.Name || !a.Equal(b) {
			t.Errorf("%s: Go says %s, the file %s", e.Name, a, b)
		}
	}
	var out bytes.Buffer
	if err := printNext(&out, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "nightly-retrain") || !strings.Contains(out.String(), "2026-03-29T03:00:00+02:00") {
		t.Fatalf("%s", out.String())
	}
}

func TestMain(m *testing.M) { redistest.Main(m) }

// TestSeedScheduleFiresOnRedis stores the Go entries in a real Redis and steps a clock
// across the first hour of a night: the cleanup fires every 10 minutes, the data sync
// at the hour, the retrain at 02:00 Berlin — each once, on its queue.
func TestSeedScheduleFiresOnRedis(t *testing.T) {
	ctx := context.Background()
	berlin, _ := time.LoadLocation("Europe/Berlin")
	clock := testutil.NewClock(time.Date(2026, 6, 10, 1, 55, 0, 0, berlin))
	c := queue.NewClient(redistest.Client(t), queue.Config{Now: clock.Now})
	defer c.Close()
	for _, q := range []string{"ml", "data", "default"} {
		if err := c.DeclareQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	b, err := beat.New(c, beat.Config{Entries: Entries()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for range 60 * 6 { // 01:55 to 02:55, in 10-second steps, twice per step as two replicas would
		for range 2 {
			if _, err := b.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(10 * time.Second)
	}
	for q, want := range map[string]int64{"ml": 1, "data": 1, "default": 6} {
		n, err := c.Counts(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if n.Pending != want {
			t.Errorf("queue %s: %d jobs, want %d", q, n.Pending, want)
		}
	}
	jobs, err := c.List(ctx, "ml", job.StatePending, 0, 10)
	if err != nil || len(jobs) != 1 || jobs[0].Task != "ml.retrain" || jobs[0].Options.Priority != 7 {
		t.Fatalf("ml: %v %+v", err, jobs)
	}
}
