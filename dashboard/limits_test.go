package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/job"
)

func rate(t *testing.T, spec string) job.Rate {
	t.Helper()
	r, err := job.ParseRate(spec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestLimitsAPI: POST /api/queues/{q}/limits sets a limit's cap and rate, each part
// kept when the body does not name it, removes a part with "none" and the whole limit
// with clear; every bad value is a 400 naming it, and changes nothing. GET shows what
// the Go client reads. It is refused without the CSRF token and in read-only mode.
func TestLimitsAPI(t *testing.T) {
	cl, c := setup(t, dashboard.Config{})
	ctx := context.Background()
	const q = "media"
	code, data := cl.do("GET", "/api/queues/"+q+"/limits", nil)
	if code != 200 || !bytes.Contains(data, []byte(`{"queue":"media","fair_mode":"off","limits":[],"keys":[],"keys_total":0,"offset":0}`)) {
		t.Fatalf("no limit: %d %s", code, data)
	}
	if code, data := cl.do("POST", "/api/queues/"+q+"/limits", map[string]any{"scope": "queue", "max_running": 5}); code != http.StatusForbidden {
		t.Fatalf("POST without CSRF: %d %s", code, data)
	}
	cl.token()
	steps := []struct {
		body map[string]any
		code int
		in   string // in the answer
	}{
		{map[string]any{"scope": "task", "task": "resize", "max_running": 3}, 200, `"limit":{"scope":"task","task":"resize","max_running":3,"running":0,"declared":false}`},
		// the rate joins the cap
		{map[string]any{"scope": "task", "task": "resize", "rate": "10/s:5"}, 200, `"max_running":3,"running":0,"rate":"10/s:5","rate_per_second":10,"burst":5,"tokens":5`},
		{map[string]any{"scope": "queue", "max_running": "20"}, 200, `"scope":"queue","max_running":20`},
		{map[string]any{"scope": "key", "max_running": 2, "rate": "5/m"}, 200, `"scope":"key","max_running":2,"running":0,"rate":"5/m","rate_per_second":0.08333333333333333,"burst":1,"declared":false}`},
		{map[string]any{"scope": "task", "task": "resize", "rate": "100/x"}, 400, `chronoq: bad RateLimit \"100/x\": the unit \"x\" is not s, m or h`},
		{map[string]any{"scope": "task", "task": "resize", "rate": "0/s"}, 400, `bad RateLimit \"0/s\"`},
		{map[string]any{"scope": "task", "task": "resize", "max_running": 0}, 400, `chronoq: bad MaxRunning \"0\": want a whole number from 1 to 1000000, or \"none\" to remove the cap`},
		{map[string]any{"scope": "task", "task": "resize", "max_running": -1}, 400, `bad MaxRunning \"-1\"`},
		{map[string]any{"scope": "task", "task": "resize", "max_running": 1.5}, 400, `bad MaxRunning \"1.5\"`},
		{map[string]any{"scope": "task", "task": "resize", "max_running": 1000001}, 400, `bad MaxRunning \"1000001\"`},
		{map[string]any{"scope": "task", "task": "resize", "max_running": "lots"}, 400, `bad MaxRunning \"lots\"`},
		{map[string]any{"scope": "task", "task": "resize", "max_running": true}, 400, `bad MaxRunning \"true\"`},
		{map[string]any{"scope": "tasks", "task": "resize", "max_running": 3}, 400, `chronoq: bad limit scope \"tasks\": want task NAME, key or queue`},
		{map[string]any{"scope": "task", "max_running": 3}, 400, `needs the task's name (task NAME)`},
		{map[string]any{"scope": "task", "task": strings.Repeat("t", 129), "max_running": 3}, 400, `Task=`},
		{map[string]any{"scope": "queue", "task": "resize", "max_running": 3}, 400, `names no task (got \"resize\")`},
		{map[string]any{"scope": "queue"}, 400, "sets nothing"},
		{map[string]any{"scope": "key", "clear": true, "rate": "none"}, 400, "takes no cap or rate"},
		{map[string]any{"scope": "queue", "max_running": 3, "burst": 2}, 400, `unknown field \"burst\"`},
		{map[string]any{"scope": "task", "task": "resize", "rate": 10}, 400, "body: json: cannot unmarshal number"},
		// "none" removes the cap; the rate stays
		{map[string]any{"scope": "task", "task": "resize", "max_running": "none"}, 200, `"limit":{"scope":"task","task":"resize","running":0,"rate":"10/s:5"`},
		{map[string]any{"scope": "key", "clear": true}, 200, `"limit":null`},
		{map[string]any{"scope": "task", "task": "never-limited", "clear": true}, 200, `"limit":null`},
		// a declared limit: the part not named is kept, and the whole is the operator's now
		{map[string]any{"scope": "task", "task": "thumb", "rate": "10/s"}, 200, `"limit":{"scope":"task","task":"thumb","max_running":4,"running":0,"rate":"10/s","rate_per_second":10,"burst":1,"tokens":1,"declared":false}`},
	}
	if _, err := clientstore.Of(c).DeclareLimit(ctx, q, job.Limit{Scope: job.ScopeTask, Task: "thumb", MaxRunning: 4, Rate: rate(t, "50/s")}); err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if code, data := cl.do("POST", "/api/queues/"+q+"/limits", s.body); code != s.code || !bytes.Contains(data, []byte(s.in)) {
			t.Errorf("POST %v: %d %s, want %d with %s", s.body, code, data, s.code, s.in)
		}
	}
	// the refusals changed nothing
	uses, err := c.Limits(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range uses {
		got = append(got, fmt.Sprintf("%s %s cap=%d rate=%s declared=%v", u.Scope, u.Task, u.MaxRunning, u.Rate, u.Declared))
	}
	if want := []string{"queue  cap=20 rate= declared=false", "task resize cap=0 rate=10/s:5 declared=false", "task thumb cap=4 rate=10/s declared=false"}; !slices.Equal(got, want) {
		t.Fatalf("limits after the posts: %q, want %q", got, want)
	}
	// an operator's setting wins over a later declaration
	if changed, err := clientstore.Of(c).DeclareLimit(ctx, q, job.Limit{Scope: job.ScopeTask, Task: "thumb", MaxRunning: 9}); err != nil || changed {
		t.Fatalf("a declaration over the operator's setting: changed %v, %v", changed, err)
	}
	// GET agrees with the Go client
	code, data = cl.do("GET", "/api/queues/"+q+"/limits", nil)
	var v dashboard.LimitsView
	if code != 200 || json.Unmarshal(data, &v) != nil || len(v.Limits) != 3 || v.Limits[0].MaxRunning != 20 || v.Limits[1].Rate != "10/s:5" ||
		v.Limits[1].Tokens == nil || *v.Limits[1].Tokens > 5 {
		t.Fatalf("GET limits: %d %s", code, data)
	}
	for _, path := range []string{"/api/queues/" + q + "/limits?offset=-1", "/api/queues/" + q + "/limits?offset=x"} {
		if code, data := cl.do("GET", path, nil); code != http.StatusBadRequest || !bytes.Contains(data, []byte("offset")) {
			t.Errorf("%s: %d %s", path, code, data)
		}
	}

	// read-only refuses before the token is even looked at
	ro := httptest.NewServer(dashboard.New(c, dashboard.Config{ReadOnly: true, Logger: quiet}))
	t.Cleanup(ro.Close)
	resp, err := http.Post(ro.URL+"/api/queues/"+q+"/limits", "application/json", strings.NewReader(`{"scope":"queue","clear":true}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !bytes.Contains(body, []byte("read-only")) {
		t.Fatalf("read-only POST: %d %s", resp.StatusCode, body)
	}
	if uses, _ := c.Limits(ctx, q); len(uses) != 3 {
		t.Fatalf("a read-only dashboard changed the limits: %+v", uses)
	}
}
