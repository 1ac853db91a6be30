package beat_test

import (
	"context"
	"testing"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/internal/testutil"
)

// TestRunEndsWithItsContext: Run fires ticks and follows entry changes until its
// context is done, then returns and leaves no goroutine behind (its subscription to
// entry changes is closed with it); checkLeaks, through newEnv, checks the last.
func TestRunEndsWithItsContext(t *testing.T) {
	e := newEnv(t, time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
	b := e.replica(t, beat.Entry{Name: "a", Spec: "@every 1s", Task: "t"})
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- b.Run(ctx) }()
	testutil.Eventually(t, 5*time.Second, "Run subscribed to entry changes", func() bool {
		n, err := e.rdb.PubSubNumSub(e.ctx, "chronoq:beat:ev").Result()
		return err == nil && n["chronoq:beat:ev"] == 1
	})
	// a change wakes Run, which looks again: the new entry's first tick fires
	if err := b.Set(e.ctx, beat.Entry{Name: "b", Spec: "@every 1s", Task: "t", Queue: "data"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	testutil.Eventually(t, 5*time.Second, "the new entry fired", func() bool { return e.jobs(t, "data") > 0 })
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return 5 s after its context was canceled")
	}
}
