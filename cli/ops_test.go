package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
)

// TestOpsCommands drives the operator commands through the built binary against a
// real Redis, checking outputs, exit codes and what changed in Redis.
func TestOpsCommands(t *testing.T) {
	bin := binary(t)
	rdb := redistest.Client(t)
	env := []string{"CHRONOQ_REDIS_URL=redis://" + redistest.Addr() + "/0"}
	ctx := context.Background()
	c := queue.NewClient(rdb, queue.Config{})
	t.Cleanup(func() { _ = c.Close() })
	cq := func(t *testing.T, wantCode int, args ...string) (string, string) {
		t.Helper()
		out, errOut, code := runBin(t, bin, env, args...)
		if code != wantCode {
			t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, out, errOut)
		}
		return out, errOut
	}

	// a scheduled job, shown, then canceled by key
	out, _ := cq(t, 0, "enqueue", "demo.add", "--args", `{"a":1,"b":2}`, "--in", "1h", "--key", "punch:7", "--queue", "timeclock", "--priority", "8", "--fair-key", "tenant 42")
	id := strings.TrimSpace(out)
	out, _ = cq(t, 0, "job", id)
	for _, want := range []string{"state     scheduled", "queue     timeclock", "priority  8", "key       punch:7", "fair key  tenant 42", `args      {"a":1,"b":2}`, "due"} {
		if !strings.Contains(out, want) {
			t.Errorf("job output lacks %q:\n%s", want, out)
		}
	}
	out, _ = cq(t, 0, "job", id, "--json")
	var jv map[string]any
	if err := json.Unmarshal([]byte(out), &jv); err != nil || jv["state"] != "scheduled" || jv["key"] != "punch:7" || jv["fair_key"] != "tenant 42" {
		t.Fatalf("job --json: %v %s", err, out)
	}
	cq(t, 0, "cancel", "--queue", "timeclock", "--key", "punch:7")
	if n, _ := c.Counts(ctx, "timeclock"); n.Scheduled != 0 {
		t.Fatalf("after cancel by key, %d scheduled", n.Scheduled)
	}
	out, _ = cq(t, 0, "job", id)
	if !strings.Contains(out, "state     canceled") {
		t.Errorf("a canceled job is kept as canceled:\n%s", out)
	}
	_, errOut := cq(t, 1, "cancel", id)
	if !strings.Contains(errOut, id) || !strings.Contains(errOut, "already ended") {
		t.Errorf("cancel of a canceled job does not name it: %s", errOut)
	}
	// a running job is asked to stop
	out, _ = cq(t, 0, "enqueue", "demo.add", "--queue", "timeclock")
	id = strings.TrimSpace(out)
	if got, err := clientstore.Of(c).Fetch(ctx, "timeclock", "w-1", 1, time.Minute); err != nil || len(got) != 1 {
		t.Fatalf("fetch: %v %v", got, err)
	}
	out, _ = cq(t, 0, "cancel", id)
	if !strings.Contains(out, "stopping "+id) || !strings.Contains(out, "w-1") {
		t.Errorf("cancel of a running job: %s", out)
	}
	if n, _ := rdb.HLen(ctx, clientstore.Of(c).Keys("timeclock").Stops).Result(); n != 1 {
		t.Errorf("%d stop requests, want 1", n)
	}
	cq(t, 3, "job", "no-such-job")
	cq(t, 3, "pause", "no-such-queue")

	// bulk enqueue: every line checked first, a bad one enqueues nothing
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte("{\"task\":\"demo.add\",\"args\":{\"a\":1}}\n{\"task\":\"demo.add\",\"prio\":3}\n{\"task\":\"demo.add\",\"priority\":11}\n"), 0o644)
	_, errOut = cq(t, 2, "enqueue", "--file", bad)
	for _, want := range []string{"2 bad line(s), nothing enqueued", `line 2: json: unknown field "prio"`, "line 3", "Priority=11"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("bad file error lacks %q: %s", want, errOut)
		}
	}
	if n, _ := c.Counts(ctx, "default"); n.Pending != 0 {
		t.Fatalf("a bad file enqueued %d jobs", n.Pending)
	}
	good := filepath.Join(dir, "jobs.jsonl")
	var lines strings.Builder
	for i := range 2500 {
		q := "default"
		if i%5 == 0 {
			q = "data"
		}
		lines.WriteString(`{"task":"demo.add","args":{"a":1,"b":2},"queue":"` + q + `"}` + "\n")
	}
	os.WriteFile(good, []byte(lines.String()), 0o644)
	out, errOut = cq(t, 0, "enqueue", "--file", good)
	if strings.TrimSpace(out) != "2500" || !strings.Contains(errOut, "enqueued 1000/2500 (40%") || !strings.Contains(errOut, "enqueued 2500/2500 (100%") {
		t.Fatalf("bulk: %q %q", out, errOut)
	}
	if d, _ := c.Counts(ctx, "default"); d.Pending != 2000 {
		t.Fatalf("default holds %d pending", d.Pending)
	}

	// pause, resume, ranking mode; info reflects each
	cq(t, 0, "pause", "default")
	cq(t, 0, "ranking", "mode", "data", "active")
	out, _ = cq(t, 0, "info")
	for _, want := range []string{"default", "2000", "paused", "data", "active", "(no live worker)"} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}
	out, _ = cq(t, 0, "info", "--json")
	var rep struct {
		Queues []struct {
			Name   string `json:"name"`
			Counts struct{ Pending int64 }
		} `json:"queues"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Queues) != 3 {
		t.Fatalf("info --json: %v %s", err, out)
	}
	cq(t, 0, "resume", "default")
	if n, _ := c.Counts(ctx, "default"); n.Paused {
		t.Fatal("still paused")
	}
	_, errOut = cq(t, 2, "ranking", "mode", "data", "turbo")
	if !strings.Contains(errOut, "turbo") {
		t.Errorf("bad mode not named: %s", errOut)
	}
	out, _ = cq(t, 0, "ranking", "show", "data")
	if !strings.Contains(out, "mode active") {
		t.Errorf("ranking show: %s", out)
	}

	// purge: refused without --yes off a terminal, then done with progress
	_, errOut = cq(t, 2, "purge", "default", "--state", "pending")
	if !strings.Contains(errOut, "delete 2000 pending jobs") || !strings.Contains(errOut, "--yes") {
		t.Errorf("purge without --yes: %s", errOut)
	}
	cq(t, 2, "purge", "default", "--state", "active", "--yes")
	out, _ = cq(t, 0, "purge", "default", "--state", "pending", "--yes")
	if strings.TrimSpace(out) != "deleted 2000" {
		t.Fatalf("purge: %q", out)
	}
	out, _ = cq(t, 0, "purge", "timeclock", "--state", "canceled", "--yes") // the job canceled by key
	if strings.TrimSpace(out) != "deleted 1" {
		t.Fatalf("purge canceled: %q", out)
	}

	// a failed job, requeued by id and then all at once
	w := exec.Command(bin, "run", "--queues", "data")
	w.Env = append(os.Environ(), env...)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = w.Process.Signal(os.Interrupt); _ = w.Wait() }()
	out, errOut = cq(t, 1, "enqueue", "demo.sleep", "--args", `{"ms":-1}`, "--queue", "data", "--wait", "30s")
	failedID := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	if !strings.Contains(errOut, "must not be negative") {
		t.Fatalf("a failed job's error is not shown: %s", errOut)
	}
	out, _ = cq(t, 0, "enqueue", "demo.add", "--queue", "timeclock") // no worker takes it
	_, errOut = cq(t, 1, "requeue", strings.TrimSpace(out))
	if !strings.Contains(errOut, "is pending, not failed") {
		t.Errorf("requeue of a canceled job: %s", errOut)
	}
	out, _ = cq(t, 0, "requeue", failedID)
	if strings.TrimSpace(out) != "requeued 1" {
		t.Fatalf("requeue: %q", out)
	}
	testutil.Eventually(t, 30*time.Second, "the requeued job fails again", func() bool {
		st, _ := c.Handle("data", failedID).State(ctx)
		return st == job.StateFailed
	})
	failed, _ := c.List(ctx, "data", job.StateFailed, 0, 10)
	out, _ = cq(t, 0, "requeue", "--queue", "data", "--all-failed")
	if strings.TrimSpace(out) != "requeued 1" {
		for _, j := range failed {
			t.Logf("failed: %s %s attempt %d: %s", j.ID, j.Task, j.Attempt, j.LastError)
		}
		t.Fatalf("requeue --all-failed: %q", out)
	}
	cq(t, 2, "requeue", "--all-failed")
}

func TestHelpOnEveryCommand(t *testing.T) {
	bin := binary(t)
	for _, cmd := range []string{"dev", "run", "beat", "dashboard", "info", "enqueue", "job", "requeue", "cancel", "purge", "pause", "resume", "ranking", "version"} {
		_, errOut, code := runBin(t, bin, nil, cmd, "--help")
		if code != 0 || !strings.Contains(errOut, "usage: chronoq-worker "+cmd) || !strings.Contains(errOut, "-") {
			t.Errorf("%s --help: exit %d\n%s", cmd, code, errOut)
		}
	}
	if _, errOut, code := runBin(t, bin, nil, "help", "purge"); code != 0 || !strings.Contains(errOut, "usage: chronoq-worker purge") {
		t.Errorf("help purge: %d %s", code, errOut)
	}
	_, errOut, code := runBin(t, bin, nil, "pause")
	if code != 2 || !strings.Contains(errOut, "usage: chronoq-worker pause QUEUE") {
		t.Errorf("pause without a queue: %d %s", code, errOut)
	}
}

func TestRunConfigFile(t *testing.T) {
	bin := binary(t)
	rdb := redistest.Client(t)
	url := "redis://" + redistest.Addr() + "/0"
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("redis: "+url+"\nconcurency: 4\n"), 0o644)
	_, errOut, code := runBin(t, bin, nil, "run", "--config", bad)
	if code != 2 || !strings.Contains(errOut, "concurency") || !strings.Contains(errOut, "line 2") {
		t.Fatalf("unknown key: exit %d: %s", code, errOut)
	}
	good := filepath.Join(dir, "worker.yaml")
	os.WriteFile(good, []byte("redis: "+url+"\nqueues:\n  - {name: ml, weight: 1, concurrency: 2}\n  - {name: default, weight: 3}\nconcurrency: 6\nshutdown_timeout: 5s\n"), 0o644)
	// the environment overrides the file
	line := startRun(t, bin, []string{"CHRONOQ_CONCURRENCY=7"}, "run", "--config", good)
	if !strings.Contains(line, "queues=\"[ml default]\"") || !strings.Contains(line, "concurrency=7") {
		t.Fatalf("config not applied: %s", line)
	}
	c := queue.NewClient(rdb, queue.Config{})
	defer c.Close()
	testutil.Eventually(t, 10*time.Second, "the worker's heartbeat with concurrency 7", func() bool {
		ws, err := c.Workers(context.Background())
		return err == nil && len(ws) == 1 && ws[0].Concurrency == 7
	})
}

// TestRunAutoscale: run --autoscale in Celery's max,min order starts at the smaller
// count, with the larger as its concurrency; the heartbeat, info and info --json
// show both.
func TestRunAutoscale(t *testing.T) {
	bin := binary(t)
	rdb := redistest.Client(t)
	url := "redis://" + redistest.Addr() + "/0"
	line := startRun(t, bin, nil, "run", "--redis", url, "--queues", "scaled", "--autoscale", "6,2")
	if !strings.Contains(line, "concurrency=6") || !strings.Contains(line, "autoscale=2..6") {
		t.Fatalf("autoscale not applied: %s", line)
	}
	c := queue.NewClient(rdb, queue.Config{})
	defer c.Close()
	testutil.Eventually(t, 10*time.Second, "the heartbeat with 2 slots of 6", func() bool {
		ws, err := c.Workers(context.Background())
		return err == nil && len(ws) == 1 && ws[0].Concurrency == 6 && ws[0].Slots == 2
	})
	env := []string{"CHRONOQ_REDIS_URL=" + url}
	out, errOut, code := runBin(t, bin, env, "info")
	if code != 0 || !strings.Contains(out, "CONCURRENCY  SLOTS") {
		t.Fatalf("info: exit %d, no SLOTS column:\n%s%s", code, out, errOut)
	}
	row := false
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[3] == "scaled" {
			row = f[4] == "6" && f[5] == "2"
		}
	}
	if !row {
		t.Fatalf("info shows no worker of concurrency 6 with 2 slots:\n%s", out)
	}
	out, _, code = runBin(t, bin, env, "info", "--json")
	var rep struct {
		Workers []queue.WorkerInfo `json:"workers"`
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || len(rep.Workers) != 1 || rep.Workers[0].Slots != 2 {
		t.Fatalf("info --json: exit %d, %v: %s", code, err, out)
	}
}

func TestInfoWatchRefreshesUntilInterrupted(t *testing.T) {
	bin := binary(t)
	redistest.Client(t)
	cmd := exec.Command(bin, "info", "--watch", "100ms")
	cmd.Env = append(os.Environ(), "CHRONOQ_REDIS_URL=redis://"+redistest.Addr()+"/0")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	refreshed := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		n := 0
		for sc.Scan() {
			if strings.Contains(sc.Text(), "(Ctrl-C stops)") {
				if n++; n == 3 {
					close(refreshed)
				}
			}
		}
	}()
	select {
	case <-refreshed:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("info --watch did not refresh three times")
	}
	_ = cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("info --watch after Ctrl-C: %v", err)
	}
}

// startRun starts the binary with args (env added to this process's), waits for its
// "worker started" log line and returns it; the worker is interrupted at test end.
func startRun(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	w := exec.Command(bin, args...)
	w.Env = append(os.Environ(), env...)
	stderr, _ := w.StderrPipe()
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Process.Signal(os.Interrupt); _ = w.Wait() })
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "worker started") {
				started <- sc.Text()
			}
		}
	}()
	select {
	case line := <-started:
		return line
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not start")
	}
	return ""
}
