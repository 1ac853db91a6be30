package queue_test

import (
	"os/exec"
	"strings"
	"testing"
)

// A program that only enqueues links package queue: it must not carry the embedded
// Redis, the Lua interpreter or Prometheus (they belong to the dev server, the
// simulator and the worker's metrics).
func TestEnqueueOnlyDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/alicebob/miniredis", "github.com/yuin/gopher-lua", "github.com/prometheus/client_golang"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("package queue links %s (through a dependency; see go list -deps)", dep)
			}
		}
	}
}
