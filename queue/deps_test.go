package queue_test

import (
	"testing"

	"github.com/chronoq/chronoq/internal/testutil"
)

// A program that only enqueues links package queue: it must not carry the embedded
// Redis, the Lua interpreter or Prometheus (they belong to the dev server, the
// simulator and the worker's metrics).
func TestEnqueueOnlyDependencies(t *testing.T) {
	testutil.CheckDependencies(t, "github.com/alicebob/miniredis", "github.com/yuin/gopher-lua", "github.com/prometheus/client_golang")
}
