package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestOwnMainGetsEverySubcommand builds this main and uses it as a deployment would:
// a worker from its run command, a job from its enqueue command, the result back.
func TestOwnMainGetsEverySubcommand(t *testing.T) {
	redistest.Client(t) // flush
	bin := filepath.Join(t.TempDir(), "myworker")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	env := append(os.Environ(), "CHRONOQ_REDIS_URL=redis://"+redistest.Addr()+"/0")
	w := exec.Command(bin, "run", "--queues", "reports")
	w.Env = env
	var werr bytes.Buffer
	w.Stderr = &werr
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = w.Process.Signal(os.Interrupt)
			_ = w.Wait()
		}
	}
	defer stop()
	enq := exec.Command(bin, "enqueue", "reports.build", "--args", `{"month":"2026-11"}`, "--queue", "reports", "--wait", "30s")
	enq.Env = env
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = enq.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = enq.Process.Kill()
		t.Fatal("enqueue --wait hung")
	}
	stop() // the worker's log is read once it has exited
	if err != nil || !strings.Contains(string(out), `"report for 2026-11: 42 rows"`) {
		t.Fatalf("enqueue: %v\n%s\nworker:\n%s", err, out, werr.String())
	}
	if !strings.Contains(werr.String(), "tasks=[reports.build]") {
		t.Errorf("the worker does not run the user's task alone:\n%s", werr.String())
	}
}
