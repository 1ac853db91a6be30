package worker_test

import (
	"testing"

	"github.com/chronoq/chronoq/internal/testutil"
)

// A worker that reports no metrics links package worker alone: it must not carry
// Prometheus (package worker/prommetrics does), the embedded Redis or the Lua
// interpreter (the dev server's and the simulator's).
func TestWorkerDependencies(t *testing.T) {
	testutil.CheckDependencies(t, "github.com/prometheus/", "github.com/alicebob/miniredis", "github.com/yuin/gopher-lua")
}
