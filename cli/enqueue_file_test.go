package cli_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/queue"
)

// TestEnqueueFileChecksEveryLineFirst: enqueue --file checks every job as the enqueue
// will (the payload limit, the horizon of "at", the nesting of args) before it sends
// the first batch. 1,500 good lines and one bad one left 1,000 jobs pending, with a
// message naming "request 500" instead of the line.
func TestEnqueueFileChecksEveryLineFirst(t *testing.T) {
	bin := binary(t)
	rdb := redistest.Client(t)
	env := []string{"CHRONOQ_REDIS_URL=redis://" + redistest.Addr() + "/0"}
	c := queue.NewClient(rdb, queue.Config{})
	t.Cleanup(func() { _ = c.Close() })
	dir := t.TempDir()
	cases := []struct {
		name string
		bad  string // the last line's fields after task and queue
		want []string
	}{
		{"at past the horizon", `"at":"2099-01-01T00:00:00Z"`, []string{"is more than 10 years ahead"}},
		{"args over the payload limit", `"args":"` + strings.Repeat("x", 600<<10) + `"`, []string{"payload of 614405 bytes is over the 524288 byte limit"}},
		{"args nested too deep", `"args":` + strings.Repeat("[", 100) + strings.Repeat("]", 100), []string{"deeper than 64 levels (job.MaxPayloadDepth)"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := "file" + string(rune('a'+i))
			var b strings.Builder
			b.WriteString("# 1,500 good jobs, then a bad one\n")
			for range 1500 {
				b.WriteString(`{"task":"demo.add","args":{"a":1,"b":2},"queue":"` + q + `"}` + "\n")
			}
			b.WriteString("\n" + `{"task":"demo.add","queue":"` + q + `",` + tc.bad + "}\n")
			path := filepath.Join(dir, q+".jsonl")
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := runBin(t, bin, env, "enqueue", "--file", path)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %.500s", code, out, errOut)
			}
			for _, want := range append([]string{"line 1503:", "nothing enqueued"}, tc.want...) {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q: %.500s", want, errOut)
				}
			}
			if strings.Contains(errOut, "request ") || strings.Contains(errOut, "enqueued 1000") {
				t.Errorf("stderr names a request or reports progress: %.500s", errOut)
			}
			n, err := c.Counts(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if n.Pending != 0 || n.Scheduled != 0 {
				t.Fatalf("a bad file enqueued %d pending, %d scheduled jobs", n.Pending, n.Scheduled)
			}
		})
	}
}
