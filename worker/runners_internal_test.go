package worker

import (
	"testing"
	"time"
)

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Runs one after another take one runner; runs at once take one each, and of those
// at most max wait for more; closing ends the waiting ones.
func TestRunnersReuseGoroutines(t *testing.T) {
	rs := newRunners(2)
	for i := 0; i < 100; i++ {
		done := make(chan struct{})
		rs.launch(func() { close(done) })
		<-done
		waitFor(t, "the runner to wait again", func() bool { return rs.waiting.Load() == 1 })
	}
	if n := rs.made.Load(); n != 1 {
		t.Fatalf("100 runs one after another started %d runners, want 1", n)
	}

	release := make(chan struct{})
	for i := 0; i < 5; i++ {
		rs.launch(func() { <-release })
	}
	if n := rs.made.Load(); n != 5 {
		t.Fatalf("5 runs at once (one runner waiting) made %d runners in all, want 5", n)
	}
	close(release)
	waitFor(t, "the runners beyond max to end", func() bool { return rs.waiting.Load() == 2 })
	rs.close()
	waitFor(t, "the waiting runners to end", func() bool { return rs.waiting.Load() == 0 })
}
