package cli_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/queue"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// binary builds chronoq-worker once per test run.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "chronoq-worker")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/chronoq-worker").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func runBin(t *testing.T, bin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%v hung", args)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

func TestBinary(t *testing.T) {
	bin := binary(t)
	redisURL := "redis://" + redistest.Addr() + "/0"
	redistest.Client(t) // flush

	t.Run("dev runs the demo on an embedded Redis", func(t *testing.T) {
		out, errOut, code := runBin(t, bin, nil, "dev", "--exit")
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		for _, want := range []string{"demo.add 7+35 on ml, priority 9", "-> 42", "succeeded on attempt 3", "delayed by 1s", "FAILED after 1 attempt", "demo done",
			"dashboard at http://127.0.0.1:", "beat entries demo-every-10s (@every 10s)"} {
			if !strings.Contains(out, want) {
				t.Errorf("dev output lacks %q:\n%s", want, out)
			}
		}
	})

	cases := []struct {
		name    string
		env     []string
		args    []string
		code    int
		inOut   string
		inErr   string
		notInIt string
	}{
		{"version", nil, []string{"version"}, 0, "chronoq-worker", "", ""},
		{"no command", nil, nil, 2, "", "usage", ""},
		{"unknown command", nil, []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`, ""},
		{"unknown flag", nil, []string{"run", "--frob"}, 2, "", "flag provided but not defined: -frob", ""},
		{"bad json", nil, []string{"enqueue", "demo.add", "--args", "{oops"}, 2, "", "not valid JSON", ""},
		{"bad priority", []string{"CHRONOQ_REDIS_URL=" + redisURL}, []string{"enqueue", "demo.add", "--priority", "12"}, 2, "", "Priority=12", ""},
		{"no task", nil, []string{"enqueue"}, 2, "", "task name is required", ""},
		{"timeout past its bound", nil, []string{"enqueue", "demo.add", "--timeout", "2562047h47m16s"}, 2, "", "Timeout=2562047h47m16s: must be positive and at most 8760h0m0s", ""},
		{"queue name with a colon", nil, []string{"enqueue", "demo.add", "--queue", "mail:high"}, 2, "", `Queue="mail:high": has ':'`, ""},
		{"bad queues", nil, []string{"run", "--queues", "ml:x"}, 2, "", `"x" is not a non-negative number`, ""},
		{"unreachable redis, password redacted", nil, []string{"enqueue", "demo.add", "--redis", "redis://:hunter2@127.0.0.1:1/0"}, 1, "", "cannot reach Redis at redis://:xxxxx@127.0.0.1:1/0", "hunter2"},
		{"unreachable cluster", nil, []string{"info", "--redis", "redis+cluster://:hunter2@127.0.0.1:1"}, 1, "", "cannot reach Redis at redis+cluster://:xxxxx@127.0.0.1:1", "hunter2"},
		{"unreachable sentinel", nil, []string{"info", "--redis", "redis://:hunter2@127.0.0.1:1/0?master_name=main"}, 1, "", "cannot reach Redis at redis://:xxxxx@127.0.0.1:1/0?master_name=main", "hunter2"},
		{"sentinel password in the query redacted", nil, []string{"info", "--redis", "redis://127.0.0.1:1/0?master_name=main&password=hunter2"}, 1, "", "password=xxxxx", "hunter2"},
		{"no go-redis noise without -v", nil, []string{"info", "--redis", "redis://127.0.0.1:1/0"}, 1, "", "cannot reach Redis", "pool.go"},
		{"unparsable url keeps its password", nil, []string{"info", "--redis", "redis://:ab%zzcd@127.0.0.1:6379/11"}, 2, "", "bad --redis URL redis://xxxxx@127.0.0.1:6379/11", "ab%zzcd"},
		{"bad env number named", []string{"CHRONOQ_CONCURRENCY=abc"}, []string{"run"}, 2, "", `CHRONOQ_CONCURRENCY="abc" is not a number`, ""},
		{"bad env boolean named", []string{"CHRONOQ_STRICT=maybe"}, []string{"run"}, 2, "", `CHRONOQ_STRICT="maybe" is not true or false`, ""},
		{"stray argument refused", nil, []string{"dev", "foo", "--exit"}, 2, "", `unexpected arguments ["foo"]`, ""},
		{"in and at together", nil, []string{"enqueue", "demo.add", "--in", "5m", "--at", "2030-01-01T00:00:00Z"}, 2, "", "in or at, not both", ""},
		{"usage checked before connecting", nil, []string{"requeue", "--all-failed", "--redis", "redis://127.0.0.1:1/0"}, 2, "", "--all-failed needs --queue", ""},
		{"bad url", nil, []string{"info", "--redis", "http://x"}, 2, "", "bad --redis URL http://x", ""},
		{"dashboard refuses a public bind without credentials", nil, []string{"dashboard", "--addr", "0.0.0.0:0"}, 2, "", "is not loopback", ""},
		{"dashboard refuses a URL as an allowed host", nil, []string{"dashboard", "--allowed-host", "https://chronoq.internal/"}, 2, "", `"https://chronoq.internal/" is not a host name`, ""},
		{"dashboard names the variable of a bad allowed host", []string{"CHRONOQ_DASHBOARD_ALLOWED_HOSTS=ok.internal,a b"}, []string{"dashboard", "--addr", "127.0.0.1:0"}, 2, "", `CHRONOQ_DASHBOARD_ALLOWED_HOSTS: "a b" is not a host name`, ""},
		{"enqueue prints the id", []string{"CHRONOQ_REDIS_URL=" + redisURL}, []string{"enqueue", "demo.add", "--args", `{"a":2,"b":40}`}, 0, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runBin(t, bin, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.inOut) || !strings.Contains(errOut, tc.inErr) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q / %q", code, tc.code, out, errOut, tc.inOut, tc.inErr)
			}
			if tc.notInIt != "" && (strings.Contains(out, tc.notInIt) || strings.Contains(errOut, tc.notInIt)) {
				t.Fatalf("output shows %q", tc.notInIt)
			}
		})
	}

	t.Run("beat file errors name the entry", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "beat.yaml")
		os.WriteFile(bad, []byte("entries:\n  - {name: broken, spec: \"77 * * * *\", task: t}\n"), 0o644)
		_, errOut, code := runBin(t, bin, nil, "beat", "--config", bad, "--redis", redisURL)
		if code != 2 || !strings.Contains(errOut, `"broken"`) {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})

	t.Run("a dedicated beat started before any worker fires into its file's queues", func(t *testing.T) {
		rdb := redistest.Client(t)
		cfg := filepath.Join(t.TempDir(), "beat.yaml")
		os.WriteFile(cfg, []byte("entries:\n  - {name: early, spec: \"@every 1s\", task: demo.add, queue: reports}\n"), 0o644)
		b := exec.Command(bin, "beat", "--redis", redisURL, "--config", cfg)
		var berr bytes.Buffer
		b.Stderr = &berr
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = b.Process.Signal(os.Interrupt); _ = b.Wait() }()
		c := queue.NewClient(rdb, queue.Config{})
		defer c.Close()
		testutil.Eventually(t, 20*time.Second, "a job enqueued on queue reports", func() bool {
			n, _ := c.Counts(context.Background(), "reports")
			return n.Pending >= 1
		})
		// the stored entries, listed and changed from the command line
		out, errOut, code := runBin(t, bin, nil, "beat", "list", "--redis", redisURL)
		if code != 0 || !strings.Contains(out, "early") || !strings.Contains(out, "@every 1s") {
			t.Fatalf("beat list: %d %s %s", code, out, errOut)
		}
		if out, _, code := runBin(t, bin, nil, "beat", "disable", "early", "--redis", redisURL); code != 0 || !strings.Contains(out, "disabled") {
			t.Fatalf("beat disable: %d %s", code, out)
		}
		if out, _, _ := runBin(t, bin, nil, "beat", "list", "--redis", redisURL); !strings.Contains(out, "disabled") {
			t.Fatalf("not shown disabled: %s", out)
		}
		if _, errOut, code := runBin(t, bin, nil, "beat", "delete", "nope", "--redis", redisURL); code != 3 || !strings.Contains(errOut, `"nope"`) {
			t.Fatalf("beat delete of an unknown entry: %d %s", code, errOut)
		}
	})

	t.Run("run --beat fires a recurring job in the worker", func(t *testing.T) {
		rdb := redistest.Client(t) // flushed once, before the worker starts
		cfg := filepath.Join(t.TempDir(), "beat.yaml")
		os.WriteFile(cfg, []byte("entries:\n  - {name: tick, spec: \"@every 1s\", task: demo.add, args: {a: 1, b: 2}}\n"), 0o644)
		w := exec.Command(bin, "run", "--redis", redisURL, "--beat", "--beat-config", cfg)
		var werr bytes.Buffer
		w.Stderr = &werr
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = w.Process.Signal(os.Interrupt); _ = w.Wait() }()
		deadline := time.Now().Add(20 * time.Second)
		for {
			n, _ := rdb.HGet(context.Background(), "chronoq:{default}:stat", "succeeded").Int()
			if n >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no recurring job ran:\n%s", werr.String())
			}
			time.Sleep(50 * time.Millisecond) // watching another process
		}
	})

	t.Run("dashboard serves the API on loopback", func(t *testing.T) {
		addr := freeAddr(t)
		d := exec.Command(bin, "dashboard", "--addr", addr, "--redis", redisURL)
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = d.Process.Signal(os.Interrupt); _ = d.Wait() }()
		deadline := time.Now().Add(15 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/api/queues")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("dashboard never answered: %v", err)
			}
			time.Sleep(20 * time.Millisecond) // waiting for another process to listen
		}
	})

	t.Run("dashboard serves loopback and --allowed-host names, refuses others", func(t *testing.T) {
		addr := freeAddr(t)
		d := exec.Command(bin, "dashboard", "--addr", addr, "--redis", redisURL, "--allowed-host", "chronoq.internal", "--allowed-host", "ops.internal:8443,other.internal")
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = d.Process.Signal(os.Interrupt); _ = d.Wait() }()
		get := func(host string) (int, string, error) {
			req, _ := http.NewRequest("GET", "http://"+addr+"/api/csrf", nil)
			req.Host = host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, "", err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body), nil
		}
		testutil.Eventually(t, 15*time.Second, "the dashboard listens", func() bool {
			_, _, err := get(addr)
			return err == nil
		})
		for _, tc := range []struct {
			host string
			code int
		}{{addr, 200}, {"localhost", 200}, {"chronoq.internal:8080", 200}, {"ops.internal", 200}, {"other.internal", 200}, {"evil.example", 403}} {
			code, body, err := get(tc.host)
			if err != nil || code != tc.code {
				t.Errorf("Host %q: %d %s %v, want %d", tc.host, code, body, err, tc.code)
			}
			if tc.code == 403 && !strings.Contains(body, "--allowed-host") {
				t.Errorf("Host %q refused without naming --allowed-host: %s", tc.host, body)
			}
		}
	})

	t.Run("run a worker with --metrics-addr, enqueue with --wait, SIGTERM stops it", func(t *testing.T) {
		metricsAddr := freeAddr(t)
		w := exec.Command(bin, "run", "--redis", redisURL, "--queues", "default", "--metrics-addr", metricsAddr)
		var werr bytes.Buffer
		w.Stderr = &werr
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runBin(t, bin, nil, "enqueue", "demo.add", "--args", `{"a":20,"b":22}`, "--wait", "20s", "--redis", redisURL)
		if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "42") {
			t.Fatalf("exit %d out %q err %q", code, out, errOut)
		}
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatalf("worker metrics: %v\n%s", err, werr.String())
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`chronoq_job_duration_seconds_count{queue="default",task="demo.add"} 1`,
			`chronoq_job_outcomes_total{outcome="succeeded",queue="default",task="demo.add"} 1`, `chronoq_jobs{queue="default",state="succeeded"}`, "go_goroutines"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("worker metrics lack %s:\n%s", want, body)
			}
		}
		_ = w.Process.Signal(os.Interrupt)
		if err := w.Wait(); err != nil {
			t.Fatalf("worker exit: %v\n%s", err, werr.String())
		}
		if !strings.Contains(werr.String(), "worker stopped") {
			t.Fatalf("no graceful stop:\n%s", werr.String())
		}
	})
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
