package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

// TestLimitsCommands drives limits show|set|clear through the built binary against a
// real Redis: each set changes the parts it names and keeps the others, none removes
// a part and clear the whole limit; every bad value exits 2 naming it and changes
// nothing; show lists each limit with its use, the fair keys running under the per-key
// limit, and a note while that limit cannot act.
func TestLimitsCommands(t *testing.T) {
	bin := binary(t)
	rdb := redistest.Client(t)
	env := []string{"CHRONOQ_REDIS_URL=redis://" + redistest.Addr() + "/0"}
	ctx := context.Background()
	c := queue.NewClient(rdb, queue.Config{})
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.EnqueueByName(ctx, "demo.add", nil, job.Queue("media")); err != nil { // the queue exists
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		code int
		want string // in stdout (code 0) or stderr
	}{
		{[]string{"limits", "show", "media"}, 0, "queue media: no limits"},
		{[]string{"limits", "set", "media", "task", "resize", "--max-running", "3"}, 0, "queue media: task resize: at most 3 running, no rate"},
		{[]string{"limits", "set", "media", "task", "resize", "--rate", "10/m:5"}, 0, "task resize: at most 3 running, rate 10/m:5"},
		{[]string{"limits", "set", "media", "queue", "--max-running=20"}, 0, "the queue: at most 20 running, no rate"},
		{[]string{"limits", "set", "media", "key", "--max-running", "2", "--rate", "5/m"}, 0,
			"each fair key: at most 2 running, rate 5/m\nnote: a per-key limit acts only in fair mode lru or share; queue media is off (chronoq-worker fair mode media share)"},
		{[]string{"limits", "set", "media", "task", "thumb", "--rate", "1/h", "--max-running", "none"}, 0, "task thumb: no cap, rate 1/h"},

		// bad input: exit 2, the value named, nothing changed
		{[]string{"limits", "set", "media", "task", "resize", "--rate", "100/x"}, 2, `chronoq-worker limits: chronoq: bad RateLimit "100/x": the unit "x" is not s, m or h`},
		{[]string{"limits", "set", "media", "task", "resize", "--rate", "0/s"}, 2, `bad RateLimit "0/s"`},
		{[]string{"limits", "set", "media", "task", "resize", "--rate", "10/s:0"}, 2, `the burst "0"`},
		{[]string{"limits", "set", "media", "task", "resize", "--max-running", "0"}, 2, `chronoq: bad MaxRunning "0": want a whole number from 1 to 1000000, or "none" to remove the cap`},
		{[]string{"limits", "set", "media", "task", "resize", "--max-running", "-1"}, 2, `bad MaxRunning "-1"`},
		{[]string{"limits", "set", "media", "task", "resize", "--max-running", "1000001"}, 2, `bad MaxRunning "1000001"`},
		{[]string{"limits", "set", "media", "task", "resize", "--max-running", "three"}, 2, `bad MaxRunning "three"`},
		{[]string{"limits", "set", "media", "tasks", "resize", "--max-running", "3"}, 2, `bad limit scope "tasks": want task NAME, key or queue`},
		{[]string{"limits", "set", "media", "task", "--max-running", "3"}, 2, "needs the task's name (task NAME)"},
		{[]string{"limits", "set", "media", "task", strings.Repeat("t", 129), "--max-running", "3"}, 2, "Task="},
		{[]string{"limits", "set", "media", "key", "acme", "--max-running", "3"}, 2, `names no task (got "acme")`},
		{[]string{"limits", "set", "media", "task", "resize"}, 2, "limits set needs --max-running N or --rate SPEC"},
		{[]string{"limits", "set", "media"}, 2, "name the limit: task NAME, key or queue"},
		{[]string{"limits", "clear", "media", "queue", "--rate", "none"}, 2, "takes no --max-running or --rate"},
		{[]string{"limits", "show", "media", "--rate", "5/s"}, 2, "go with limits set"},
		{[]string{"limits", "set", "media", "queue", "--max-running", "3", "--json"}, 2, "--json goes with limits show"},
		{[]string{"limits", "list", "media"}, 2, "use: limits show QUEUE"},
		{[]string{"limits", "show", "me:dia"}, 2, `Queue="me:dia"`},
		{[]string{"limits", "set", "nosuchqueue", "queue", "--max-running", "3"}, 3, "nosuchqueue"},
		// checked before connecting: an unreachable Redis is not even dialled
		{[]string{"limits", "set", "media", "task", "resize", "--rate", "100/x", "--redis", "redis://127.0.0.1:1/0"}, 2, `"100/x"`},
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
	limits := func() []string {
		t.Helper()
		uses, err := c.Limits(ctx, "media")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, u := range uses {
			got = append(got, fmt.Sprintf("%s %q %d %s", u.Scope, u.Task, u.MaxRunning, u.Rate))
		}
		return got
	}
	if got, want := limits(), []string{`queue "" 20 `, `task "resize" 3 10/m:5`, `task "thumb" 0 1/h`, `key "" 2 5/m`}; !slices.Equal(got, want) {
		t.Fatalf("limits after the commands: %q, want %q", got, want)
	}

	// use: two jobs of resize running, under fair share so the per-key limit counts them
	if err := c.SetFairMode(ctx, "media", fairshare.ModeShare); err != nil {
		t.Fatal(err)
	}
	p := queue.NewClient(rdb, queue.Config{}) // c's copy of the fair mode may still say off
	t.Cleanup(func() { _ = p.Close() })
	for _, k := range []string{"acme", "acme", ""} {
		opts := []job.Option{job.Queue("media")}
		if k != "" {
			opts = append(opts, job.FairKey(k))
		}
		if _, err := p.EnqueueByName(ctx, "resize", nil, opts...); err != nil {
			t.Fatal(err)
		}
	}
	taken := 0
	testutil.Eventually(t, 5*time.Second, "3 jobs fetched", func() bool { // the demo.add job and two of resize's
		got, err := clientstore.Of(c).Fetch(ctx, "media", "w-1", 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		taken += len(got)
		return taken >= 3
	})
	out, errOut, code := runBin(t, bin, env, "limits", "show", "media")
	if code != 0 {
		t.Fatalf("limits show: %d %s", code, errOut)
	}
	for _, row := range []string{
		`^queue: fair mode share$`,
		`^SCOPE +TASK/KEY +CAP +RUNNING +RATE +TOKENS +SOURCE$`,
		`^queue +- +20 +3/20 +- +- +set$`,
		`^task +resize +3 +2/3 +10/m:5 +3\.\d/5 +set$`,
		`^task +thumb +- +- +1/h +1\.0/1 +set$`,
		`^key +\(each key\) +2 +- +5/m +burst 1 +set$`,
		`^key +\(default\) +2 +1/2 +5/m +0\.\d/1$`, // refilling at 5/m: under a token for 12 s
		`^key +acme +2 +1/2 +5/m +0\.\d/1$`,
	} {
		if !regexp.MustCompile(`(?m)` + strings.Replace(row, "^queue:", "^queue media:", 1)).MatchString(out) {
			t.Errorf("limits show lacks a line like %s:\n%s", row, out)
		}
	}
	if strings.Contains(out, "note:") {
		t.Errorf("a note with fair mode share:\n%s", out)
	}
	out, _, code = runBin(t, bin, env, "limits", "show", "media", "--json")
	var v dashboard.LimitsView
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || len(v.Limits) != 4 || v.KeysTotal != 2 || v.Keys[1].Key != "acme" ||
		v.Keys[1].Running != 1 || v.Limits[1].Running != 2 || v.Limits[1].Tokens == nil || v.FairMode != fairshare.ModeShare {
		t.Fatalf("limits show --json: %d %v\n%s", code, err, out)
	}

	// none removes a part, clear the whole limit
	for _, s := range []struct {
		args []string
		want string
	}{
		{[]string{"limits", "set", "media", "task", "resize", "--rate", "none"}, "task resize: at most 3 running, no rate"},
		{[]string{"limits", "clear", "media", "task", "thumb"}, "task thumb: no limit\na limit the task declares"},
		{[]string{"limits", "clear", "media", "key"}, "each fair key: no limit"},
		{[]string{"limits", "clear", "media", "queue"}, "the queue: no limit"},
	} {
		out, errOut, code := runBin(t, bin, env, s.args...)
		if code != 0 || !strings.Contains(out, s.want) {
			t.Errorf("%v: exit %d, stdout lacks %q:\n%s%s", s.args, code, s.want, out, errOut)
		}
	}
	if got, want := limits(), []string{`task "resize" 3 `}; !slices.Equal(got, want) {
		t.Fatalf("limits after the clears: %q, want %q", got, want)
	}
}
