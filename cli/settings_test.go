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
	run := func(a ...string) []string { return append([]string{"run", "--redis", "redis://127.0.0.1:1/0"}, a...) }
	cases := []struct {
		name string
		env  []string
		file string // the config file's text, "" for none
		args []string
		code int
		want []string // in stderr
	}{
		// durations need their unit: a bare 30 would be 30ns to the YAML decoder
		{"file duration without a unit", nil, "concurrency: 2\nshutdown_timeout: 30\n", run(), 2,
			[]string{"line 2", "shutdown_timeout: 30 is a number without a unit", `"30s"`}},
		{"file duration as a quoted number", nil, "shutdown_timeout: \"30\"\n", run(), 2,
			[]string{"line 1", `shutdown_timeout: "30" is not a duration`, `"30s"`}},
		{"file duration as a float", nil, "shutdown_timeout: 1.5\n", run(), 2,
			[]string{"line 1", "shutdown_timeout: 1.5 is a number without a unit"}},
		{"file duration with its unit", nil, "shutdown_timeout: 30s\n", run(), 1, []string{"cannot reach Redis"}},
		{"env duration without a unit", []string{"CHRONOQ_SHUTDOWN_TIMEOUT=30"}, "", run(), 2,
			[]string{`CHRONOQ_SHUTDOWN_TIMEOUT="30" is not a duration`, `"30s"`}},
		{"flag duration without a unit", nil, "", run("--shutdown-timeout", "30"), 2,
			[]string{`invalid value "30" for flag -shutdown-timeout`, `"30s"`}},

		// numbers are bounded: a huge weight overflowed the fetch loop's sum and crashed it
		{"queue weight max int64", nil, "", run("--queues", "a:9223372036854775807,b:1"), 2,
			[]string{`queue "a:9223372036854775807": weight 9223372036854775807 is out of range (0 to 1000000)`}},
		{"queue weight beyond int64", nil, "", run("--queues", "a:99999999999999999999"), 2,
			[]string{`weight 99999999999999999999 is out of range (0 to 1000000)`}},
		{"queue cap over", nil, "", run("--queues", "a:1:20000"), 2,
			[]string{`queue "a:1:20000": concurrency 20000 is out of range (0 to 10000)`}},
		{"queue weight from the environment", []string{"CHRONOQ_QUEUES=a:9223372036854775807"}, "", run(), 2,
			[]string{"weight 9223372036854775807 is out of range"}},
		{"queue listed twice", nil, "", run("--queues", "a,b,a"), 2, []string{`queue "a" is listed twice`}},
		{"dev queue weight max int64", nil, "", []string{"dev", "--exit", "--queues", "ml:9223372036854775807"}, 2,
			[]string{"weight 9223372036854775807 is out of range"}},
		{"concurrency flag over", nil, "", run("--concurrency", "20000"), 2,
			[]string{"--concurrency 20000 is out of range (0 to 10000"}},
		{"concurrency flag negative", nil, "", run("--concurrency", "-1"), 2, []string{"--concurrency -1 is out of range"}},
		{"concurrency env over", []string{"CHRONOQ_CONCURRENCY=20000"}, "", run(), 2,
			[]string{"CHRONOQ_CONCURRENCY=20000 is out of range (0 to 10000)"}},
		{"concurrency env beyond int64", []string{"CHRONOQ_CONCURRENCY=99999999999999999999"}, "", run(), 2,
			[]string{"CHRONOQ_CONCURRENCY=99999999999999999999 is out of range"}},
		{"autoscale of one number", nil, "", run("--autoscale", "4"), 2,
			[]string{`--autoscale "4": want two slot counts, min,max (or Celery's max,min), e.g. 4,64`}},
		{"autoscale not numbers", nil, "", run("--autoscale", "a,b"), 2, []string{`--autoscale "a,b": "a" is not a whole number of slots`}},
		{"autoscale from zero", nil, "", run("--autoscale", "0,4"), 2, []string{`--autoscale "0,4": 0 is below 1`}},
		{"autoscale over the bound", nil, "", run("--autoscale", "64,100000"), 2,
			[]string{`--autoscale "64,100000": worker: Autoscale.Max 100000 is over MaxConcurrency (10000)`}},
		{"autoscale env bad", []string{"CHRONOQ_AUTOSCALE=8"}, "", run(), 2, []string{`--autoscale "8": want two slot counts`}},
		{"autoscale in either order", nil, "", run("--autoscale", "64,4"), 1, []string{"cannot reach Redis"}},
		{"file autoscale bad", nil, "concurrency: 2\nautoscale: 4,x\n", run(), 2,
			[]string{`line 2: autoscale: "4,x": "x" is not a whole number of slots`}},
		{"file autoscale", nil, "autoscale: 64,4\n", run(), 1, []string{"cannot reach Redis"}},
		{"file autoscale of one number", nil, "autoscale: 4\n", run(), 2, []string{`line 1: autoscale: "4": want two slot counts`}},
		{"shutdown timeout flag negative", nil, "", run("--shutdown-timeout", "-5s"), 2,
			[]string{"--shutdown-timeout -5s is out of range (0 to 24h0m0s)"}},
		{"shutdown timeout env over", []string{"CHRONOQ_SHUTDOWN_TIMEOUT=48h"}, "", run(), 2,
			[]string{"CHRONOQ_SHUTDOWN_TIMEOUT=48h is out of range (0 to 24h0m0s)"}},
		{"file queue weight max int64", nil, "queues:\n  - {name: ml, weight: 1}\n  - {name: data, weight: 9223372036854775807}\n", run(), 2,
			[]string{"line 3: queues[1].weight: 9223372036854775807 is out of range (0 to 1000000"}},
		{"file queue cap over", nil, "queues:\n  - name: ml\n    concurrency: 20000\n", run(), 2,
			[]string{"line 3: queues[0].concurrency: 20000 is out of range (0 to 10000"}},
		{"file queue name with a colon", nil, "queues:\n  - {name: \"mail:high\", weight: 2}\n", run(), 2,
			[]string{"line 2: queues[0].name:", `Queue="mail:high": has ':'`}},
		{"file queue listed twice", nil, "queues:\n  - {name: ml}\n  - {name: ml}\n", run(), 2,
			[]string{`line 3: queues[1].name: "ml" is listed twice`}},
		{"file concurrency over", nil, "concurrency: 20000\n", run(), 2,
			[]string{"line 1: concurrency: 20000 is out of range (0 to 10000"}},
		{"file shutdown timeout over", nil, "shutdown_timeout: 48h\n", run(), 2,
			[]string{"line 1: shutdown_timeout: 48h0m0s is out of range (0 to 24h0m0s)"}},
		{"file within bounds", nil, "queues:\n  - {name: ml, weight: 1000000, concurrency: 10000}\nconcurrency: 10000\nshutdown_timeout: 24h\n", run(), 1,
			[]string{"cannot reach Redis"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
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
