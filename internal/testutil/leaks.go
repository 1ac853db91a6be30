package testutil

import (
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakChecked holds the tests CheckLeaks has been called for.
var leakChecked sync.Map

// CheckLeaks fails t if a goroutine is still running once t has ended and its
// cleanups have run (the workers' Stop, the beats' end, the clients' and servers'
// Close): the library must leave nothing behind. Call it before t registers its first
// cleanup: cleanups run last first, so the check, registered first, runs after them
// all. A second call for the same t does nothing. A subtest ignores the goroutines
// that were running when it called it (its parent's workers and clients are still
// up); a top-level test ignores none, so it also fails for what an earlier test left.
//
// (redistest.Main ends the process itself, so a goleak.VerifyTestMain around it would
// never run: the check is per test instead.)
func CheckLeaks(t *testing.T) { CheckLeaksWithin(t, 0) }

// CheckLeaksWithin is CheckLeaks giving goroutines up to patience to end, beyond the
// half second goleak waits on its own.
func CheckLeaksWithin(t *testing.T, patience time.Duration) {
	t.Helper()
	if _, done := leakChecked.LoadOrStore(t, true); done {
		return
	}
	var opts []goleak.Option
	if strings.Contains(t.Name(), "/") {
		opts = append(opts, goleak.IgnoreCurrent())
	}
	t.Cleanup(func() {
		for end := time.Now().Add(patience); time.Now().Before(end) && goleak.Find(opts...) != nil; {
			time.Sleep(50 * time.Millisecond)
		}
		goleak.VerifyNone(t, opts...)
	})
}
