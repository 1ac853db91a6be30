package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRefusesBadSettings: a bad setting, from a flag, the environment or the config
// file, exits 2 with a message that names it and its value, before Redis is dialled
// (the URL given is unreachable, which would exit 1).
func TestRunRefusesBadSettings(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	const unreachable = "redis://127.0.0.1:1/0"
	cases := []struct {
		name string
		env  []string
		file string // the config file's text, "" for none
		args []string
		code int
		want []string // in stderr
	}{
		// durations need their unit: a bare 30 would be 30ns to the YAML decoder
		{"file duration without a unit", nil, "concurrency: 2\nshutdown_timeout: 30\n", nil, 2,
			[]string{"line 2", "shutdown_timeout: 30 is a number without a unit", `"30s"`}},
		{"file duration as a quoted number", nil, "shutdown_timeout: \"30\"\n", nil, 2,
			[]string{"line 1", `shutdown_timeout: "30" is not a duration`, `"30s"`}},
		{"file duration as a float", nil, "shutdown_timeout: 1.5\n", nil, 2,
			[]string{"line 1", "shutdown_timeout: 1.5 is a number without a unit"}},
		{"file duration with its unit", nil, "shutdown_timeout: 30s\n", nil, 1, []string{"cannot reach Redis"}},
		{"env duration without a unit", []string{"CHRONOQ_SHUTDOWN_TIMEOUT=30"}, "", nil, 2,
			[]string{`CHRONOQ_SHUTDOWN_TIMEOUT="30" is not a duration`, `"30s"`}},
		{"flag duration without a unit", nil, "", []string{"--shutdown-timeout", "30"}, 2,
			[]string{`invalid value "30" for flag -shutdown-timeout`, `"30s"`}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "--redis", unreachable}, tc.args...)
			if tc.file != "" {
				path := filepath.Join(dir, fmt.Sprintf("worker%d.yaml", i))
				if err := os.WriteFile(path, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", path)
			}
			_, errOut, code := runBin(t, bin, tc.env, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}
