package cli_test

import (
	"context"
	"strings"
	"testing"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

func TestFairCommands(t *testing.T) {
	bin := binary(t)
	rdb := redistest.Client(t)
	env := []string{"CHRONOQ_REDIS_URL=redis://" + redistest.Addr() + "/0"}
	ctx := context.Background()
	c := queue.NewClient(rdb, queue.Config{})
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.EnqueueByName(ctx, "demo.add", nil, job.Queue("tenants")); err != nil { // the queue exists
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		code int
		want string // in stdout (code 0) or stderr
	}{
		{[]string{"fair", "mode", "tenants"}, 0, "fair mode off"},
		{[]string{"fair", "mode", "tenants", "share"}, 0, "fair mode share"},
		{[]string{"fair", "mode", "tenants", "fast"}, 2, `"fast"`},
		{[]string{"fair", "weight", "tenants", "acme", "2"}, 0, "weight 2"},
		{[]string{"fair", "weight", "tenants", "acme", "0"}, 2, "0"},
		{[]string{"fair", "weight", "tenants", "acme", "NaN"}, 2, "NaN"},
		{[]string{"fair", "weight", "tenants", "acme", "abc"}, 2, `"abc"`},
		{[]string{"fair", "weight", "tenants", strings.Repeat("k", 129), "2"}, 2, "128"},
		{[]string{"fair", "lateness", "tenants", "acme", "10m"}, 0, "lateness 10m"},
		{[]string{"fair", "lateness", "tenants", "acme", "soon"}, 2, `"soon"`},
		{[]string{"fair", "tag", "tenants", "acme", "plan=gold"}, 0, "plan=gold"},
		{[]string{"fair", "tag", "tenants", "acme", "plan"}, 2, `"plan"`},
		{[]string{"fair", "keys", "tenants", "0", "0"}, 2, `"0"`},
		{[]string{"fair", "mode", "nosuchqueue", "lru"}, 3, "nosuchqueue"},
	}
	for _, s := range steps {
		out, errOut, code := runBin(t, bin, env, s.args...)
		text := out
		if s.code != 0 {
			text = errOut
		}
		if code != s.code || !strings.Contains(text, s.want) {
			t.Errorf("%v: exit %d (want %d), output lacks %q:\nstdout: %s\nstderr: %s", s.args, code, s.code, s.want, out, errOut)
		}
	}
	// the refused weights changed nothing
	k, err := c.FairKey(ctx, "tenants", "acme")
	if err != nil || k.Weight != 2 || k.Tags["plan"] != "gold" {
		t.Fatalf("acme after the commands: %+v %v", k, err)
	}
	// a producer started after the switch: c's copy of the queue's settings (read by its
	// first enqueue, kept 2 s) may still say off
	p := queue.NewClient(rdb, queue.Config{})
	t.Cleanup(func() { _ = p.Close() })
	for range 3 {
		if _, err := p.EnqueueByName(ctx, "demo.add", nil, job.Queue("tenants"), job.FairKey("acme")); err != nil {
			t.Fatal(err)
		}
	}
	out, _, code := runBin(t, bin, env, "fair", "keys", "tenants")
	if code != 0 || !strings.Contains(out, "1 keys with pending jobs") || !strings.Contains(out, "acme") || !strings.Contains(out, "plan=gold") {
		t.Fatalf("fair keys: %d\n%s", code, out)
	}
	out, _, _ = runBin(t, bin, env, "info")
	if !strings.Contains(out, "share") || !strings.Contains(out, "top fair keys") || !strings.Contains(out, "acme") {
		t.Fatalf("info lacks the fair mode or keys:\n%s", out)
	}
	if m, _ := c.FairMode(ctx, "tenants"); m != fairshare.ModeShare {
		t.Fatalf("mode %s after a refused switch", m)
	}
}
