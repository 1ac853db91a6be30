package testutil

import (
	"os/exec"
	"strings"
	"testing"
)

// CheckDependencies fails t for every package that the package under test (the test's
// working directory) links, directly or not, whose import path starts with one of
// banned. It skips the test when no go command is on PATH.
func CheckDependencies(t *testing.T, banned ...string) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, b := range banned {
			if strings.HasPrefix(dep, b) {
				t.Errorf("the package links %s (through a dependency; see go list -deps)", dep)
			}
		}
	}
}
