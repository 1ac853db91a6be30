package worker_test

import (
	"os/exec"
	"strings"
	"testing"
)

// A worker that reports no metrics links package worker alone: it must not carry
// Prometheus (package worker/prommetrics does), the embedded Redis or the Lua
// interpreter (the dev server's and the simulator's).
func TestWorkerDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/prometheus/", "github.com/alicebob/miniredis", "github.com/yuin/gopher-lua"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("package worker links %s (through a dependency; see go list -deps)", dep)
			}
		}
	}
}
