package cli

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/redis/go-redis/v9"
)

// FuzzEnqueueFile: enqueue --file reads any file without panicking, and either
// enqueues every job line (exit 0, printing their number) or, for a bad line, exits
// with a usage error naming it and enqueues nothing. It never fails halfway: every job
// is checked before the first is sent.
func FuzzEnqueueFile(f *testing.F) {
	for _, s := range []string{
		`{"task":"demo.add","args":{"a":1,"b":2}}`,
		"# a comment\n\n" + `{"task":"emails.send","args":{"to":"ada@example.com"},"queue":"mail","priority":9,"retries":2,"timeout":"90s"}` + "\r\n" +
			`{"task":"reports.build","in":"10m","key":"nightly"}` + "\n" + `{"task":"reports.build","at":"2026-12-24T18:00:00Z","key":"nightly"}`,
		`{"task":"t","args":[1,2.5,"x",null,true]}` + "\n" + `  {"task":"t"}  `,
		`{"task":"t","args":1e400}`, `{"task":"t","args":{"a":1}]}`, `{"task":"t"} {"task":"u"}`, `{"task":"t"}]`,
		`{"task":""}`, `{"task":"has space"}`, `{"task":"t","colour":"red"}`, `{"task":"t","priority":12}`,
		`{"task":"t","retries":-1}`, `{"task":"t","timeout":"90"}`, `{"task":"t","in":"-5m"}`, `{"task":"t","in":"1s","at":"2026-01-01T00:00:00Z"}`,
		`{"task":"t","at":"2099-01-01T00:00:00Z"}`, `{"task":"t","at":"yesterday"}`, `{"task":"t","queue":"a:b"}`,
		`{"task":"t","key":"{k}"}`, `{"task":"t","args":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`,
		`{"task":"t","args":"` + strings.Repeat("x", 600<<10) + `"}`, `[]`, `null`, `"x"`, `{`, "\x00", "#\n#",
	} {
		f.Add([]byte(s))
	}
	rdb := redistest.Client(f)
	ctx := context.Background()
	path := filepath.Join(f.TempDir(), "jobs.jsonl")
	connect := Options{Connect: func(context.Context) (redis.UniversalClient, error) {
		return redis.NewClient(&redis.Options{Addr: redistest.Addr()}), nil
	}}
	c := queue.NewClient(rdb, queue.Config{})
	f.Cleanup(func() { _ = c.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := rdb.FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		code := run([]string{"enqueue", "--file", path}, connect, &out, &errOut)
		lines := 0
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			if text := bytes.TrimSpace(sc.Bytes()); len(text) > 0 && text[0] != '#' {
				lines++
			}
		}
		jobs := 0
		qs, err := c.Queues(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			n, err := c.Counts(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			jobs += int(n.Pending + n.Scheduled)
		}
		switch code {
		case ExitOK:
			if out.String() != strconv.Itoa(lines)+"\n" {
				t.Fatalf("enqueue --file of %q: printed %q, want %d jobs", data, out.String(), lines)
			}
			// a job whose schedule key an earlier line holds replaces that one
			if jobs > lines || lines > 0 && jobs == 0 {
				t.Fatalf("enqueue --file of %q: %d of %d lines enqueued", data, jobs, lines)
			}
		case ExitUsage:
			if !strings.Contains(errOut.String(), "line ") || !strings.Contains(errOut.String(), "nothing enqueued") {
				t.Fatalf("enqueue --file of %q: the usage error names no line: %s", data, errOut.String())
			}
			if jobs != 0 {
				t.Fatalf("enqueue --file of %q: refused (%s), but %d jobs were enqueued", data, errOut.String(), jobs)
			}
		default:
			t.Fatalf("enqueue --file of %q: exit %d: %s", data, code, errOut.String())
		}
	})
}

// FuzzLoadConfig: loadConfig reads any config file without panicking, and a file it
// takes holds what the worker takes: its queues, written in the --queues syntax as
// run passes them on, parse back as they were and pass the worker's checks.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		"", "redis: redis://localhost:6379/0\nnamespace: app\n",
		"queues:\n  - {name: ml, weight: 3, concurrency: 2}\n  - {name: data, weight: 2}\n  - name: default\nstrict: true\nconcurrency: 20\nshutdown_timeout: 45s\nbeat: true\nbeat_config: beat.yaml\nmetrics_addr: :9090\n",
		"shutdown_timeout: 30\n", "shutdown_timeout: \"30\"\n", "shutdown_timeout:\n", "shutdown_timeout: [1]\n", "shutdown_timeout: -1s\n",
		"d: &d 5s\nshutdown_timeout: *d\n", "queues:\n  - {name: a}\n  - {name: a}\n", "queues:\n  - {weight: 2}\n",
		"queues:\n  - {name: 'a:b'}\n", "queues:\n  - {name: a, weight: -1}\n", "queues:\n  - {name: a, concurrency: 99999999}\n",
		"queues: {name: a}\n", "queues:\n  - [a]\n", "colour: red\n", "concurrency: 1e3\n", "- 1\n", "a: &a [*a]\n",
		"queues:\n  - name: a\n    weight: 0\n    concurrency: 0\n", "autoscale: 4,64\n", "autoscale: 4\n", "autoscale: [4, 64]\n", "queues:\n  - {name: ' a'}\n", "queues:\n  - {name: ','}\n",
	} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "chronoq.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := loadConfig(path)
		if err != nil {
			return
		}
		if c.Concurrency < 0 || c.Concurrency > worker.MaxConcurrency || c.ShutdownTimeout < 0 || c.ShutdownTimeout > worker.MaxConfigDuration {
			t.Fatalf("loadConfig(%q) takes %+v", data, c)
		}
		if len(c.Queues) == 0 {
			return
		}
		qs, err := parseQueues(c.queuesSpec())
		if err != nil {
			t.Fatalf("loadConfig(%q) takes queues %+v, which --queues %q refuses: %v", data, c.Queues, c.queuesSpec(), err)
		}
		want := make([]worker.QueueConfig, len(c.Queues))
		for i, q := range c.Queues {
			want[i] = worker.QueueConfig{Name: q.Name, Weight: q.Weight, Concurrency: q.Concurrency}
		}
		if !slices.Equal(qs, want) {
			t.Fatalf("loadConfig(%q): queues %+v read back from %q as %+v", data, want, c.queuesSpec(), qs)
		}
	})
}

// FuzzParseQueues: --queues reads any value without panicking; the queues it takes
// have valid, distinct names and weights and caps in range, and read back the same
// from the syntax a config file's queues are written in.
func FuzzParseQueues(f *testing.F) {
	for _, s := range []string{"default", "ml:3,data:2,default", "ml:3:2, data ,", "a:0:0", "a:b", "a:1:2:3", "a,a", "",
		",", "a:-1", "a:99999999999999999999", "a:" + strconv.Itoa(worker.MaxWeight+1), "a::", " : ", "日本:1", "a:+1", "a:0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		qs, err := parseQueues(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		fc := fileConfig{}
		for _, q := range qs {
			if job.ValidateQueueName(q.Name) != nil || seen[q.Name] || q.Weight < 0 || q.Weight > worker.MaxWeight ||
				q.Concurrency < 0 || q.Concurrency > worker.MaxConcurrency {
				t.Fatalf("parseQueues(%q) takes %+v", s, qs)
			}
			seen[q.Name] = true
			fc.Queues = append(fc.Queues, fileQueue{Name: q.Name, Weight: q.Weight, Concurrency: q.Concurrency})
		}
		back, err := parseQueues(fc.queuesSpec())
		if err != nil || !slices.Equal(back, qs) {
			t.Fatalf("parseQueues(%q) = %+v; written as %q it reads %+v, %v", s, qs, fc.queuesSpec(), back, err)
		}
	})
}
