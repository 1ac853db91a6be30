package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

// fetchRunning fetches n jobs of q as worker "w" and leaves them running: they hold
// their limits' slots and have taken their tokens.
func fetchRunning(t *testing.T, c *queue.Client, q string, n int) []store.Fetched {
	t.Helper()
	var taken []store.Fetched
	// a fetch may stop at a lane or fair set its caller has not seen yet; the next learns it
	testutil.Eventually(t, 5*time.Second, fmt.Sprintf("%d jobs fetched", n), func() bool {
		got, err := clientstore.Of(c).Fetch(context.Background(), q, "w", n-len(taken), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, got...)
		return len(taken) >= n
	})
	return taken
}

func mustLimit(t *testing.T, c *queue.Client, q string, l job.Limit) {
	t.Helper()
	if err := c.SetLimit(context.Background(), q, l); err != nil {
		t.Fatal(err)
	}
}

// TestLimitsPage: the limits page shows each limit with its use (running / cap, tokens
// / burst, rate, declared or set) as the Go client reads it, a task name holding
// markup as text everywhere it appears, a note when a per-key limit cannot act (fair
// mode off), and a form per limit and one to set any; a read-only dashboard shows the
// same values with no form or button. The queue page links to it.
func TestLimitsPage(t *testing.T) {
	cl, c := setup(t, dashboard.Config{})
	ctx := context.Background()
	const q = "media"
	const xss = `<script>alert(1)</script>"'&`
	mustLimit(t, c, q, job.Limit{Scope: job.ScopeTask, Task: xss, MaxRunning: 2, Rate: rate(t, "10/s:4")})
	mustLimit(t, c, q, job.Limit{Scope: job.ScopeTask, Task: "t", MaxRunning: 3})
	mustLimit(t, c, q, job.Limit{Scope: job.ScopeQueue, Rate: rate(t, "1/m:5")})
	mustLimit(t, c, q, job.Limit{Scope: job.ScopeKey, MaxRunning: 1})
	if _, err := clientstore.Of(c).DeclareLimit(ctx, q, job.Limit{Scope: job.ScopeTask, Task: "thumb", Rate: rate(t, "50/s")}); err != nil {
		t.Fatal(err)
	}
	enqueueN(t, c, q, 3)
	fetchRunning(t, c, q, 2)
	code, page := cl.do("GET", "/queues/"+q+"/limits?norefresh", nil)
	if code != 200 {
		t.Fatalf("limits page: %d %s", code, page)
	}
	rows := map[string]string{}
	var order []string
	for _, m := range regexp.MustCompile(`(?s)<tr data-limit="([^"]*)">(.*?)</tr>`).FindAllSubmatch(page, -1) {
		rows[string(m[1])] = string(m[2])
		order = append(order, string(m[1]))
	}
	xssID := "task:&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;"
	if want := []string{"queue", xssID, "task:t", "task:thumb", "key"}; !slices.Equal(order, want) {
		t.Fatalf("the page lists %q, want %q", order, want)
	}
	for id, want := range map[string][]string{
		// two of the queue's five tokens taken by the fetch, a tiny part of one back
		"queue": {`<td class="task"><i>the queue</i></td>`, `<td class="running">–</td>`, `<td class="rate">1/m:5</td>`,
			`<td class="tokens"><meter min="0" max="5" value="3.0"></meter> 3.0 / 5</td>`, `<td class="source">set</td>`},
		xssID: {`<td class="task">&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;</td>`, `<meter min="0" max="2" value="0"></meter> 0 / 2`,
			`<td class="rate">10/s:4</td>`, `<meter min="0" max="4" value="4.0"></meter> 4.0 / 4`,
			`<input type="hidden" name="task" value="&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;">`,
			`data-body="{&#34;clear&#34;:true,&#34;scope&#34;:&#34;task&#34;,&#34;task&#34;:&#34;\u003cscript\u003ealert(1)\u003c/script\u003e\&#34;&#39;\u0026&#34;}"`},
		"task:t": {`<meter min="0" max="3" value="2"></meter> 2 / 3`, `<td class="rate">–</td>`, `<td class="tokens">–</td>`,
			`name="max_running" class="cap" inputmode="numeric" value="3"`, `name="rate" class="rate" value=""`},
		"task:thumb": {`<td class="rate">50/s</td>`, `<meter min="0" max="1" value="1.0"></meter> 1.0 / 1`, `<td class="source">declared</td>`},
		"key":        {`<td class="task"><i>each fair key</i></td>`, `<td class="running">1 per key</td>`},
	} {
		for _, w := range want {
			if !strings.Contains(rows[id], w) {
				t.Errorf("limit %s: its row lacks %q:\n%s", id, w, rows[id])
			}
		}
	}
	for _, w := range []string{`id="key-note"`, `id="set-limit"`, `<h2>Fair keys with jobs running</h2>`,
		"No fair key has jobs running under the per-key limit."} {
		if !bytes.Contains(page, []byte(w)) {
			t.Errorf("the page lacks %q", w)
		}
	}
	if bytes.Contains(page, []byte("<script>alert")) {
		t.Error("the page shows a task name's markup unescaped")
	}
	checkPage(t, cl, "/queues/"+q, 200, []string{`id="limits-link" href="/queues/media/limits"`}, nil, nil)
	checkPage(t, cl, "/queues/"+q+"/fair", 200, []string{`href="/queues/media/limits"`}, nil, nil)
	// with fair share on, the note goes
	if err := c.SetFairMode(ctx, q, fairshare.ModeLRU); err != nil {
		t.Fatal(err)
	}
	checkPage(t, cl, "/queues/"+q+"/limits", 200, []string{`data-limit="key"`}, []string{`id="key-note"`}, nil)
	// no limit
	checkPage(t, cl, "/queues/empty/limits", 200, []string{"No limit: the jobs of empty run"}, []string{"Fair keys with jobs running", `id="key-note"`}, nil)

	ro := httptest.NewServer(dashboard.New(c, dashboard.Config{ReadOnly: true, Logger: quiet}))
	t.Cleanup(ro.Close)
	resp, err := http.Get(ro.URL + "/queues/" + q + "/limits?norefresh")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`<meter min="0" max="3" value="2"></meter> 2 / 3`)) ||
		bytes.Contains(body, []byte(`data-post=`)) || bytes.Contains(body, []byte(`<form`)) || !bytes.Contains(body, []byte(`<body class="read-only">`)) {
		t.Errorf("read-only limits page: %d, want the use shown and no form or button:\n%s", resp.StatusCode, body)
	}
}

var limitKeyRow = regexp.MustCompile(`(?s)<tr data-key="([^"]*)">(.*?)</tr>`)

// TestLimitsPagePaging: under a per-key limit, the limits page lists the fair keys
// with jobs running 50 at a time, by name with the default key first, each with its
// running jobs against the cap and its own bucket; the API pages them the same way.
func TestLimitsPagePaging(t *testing.T) {
	cl, c := setup(t, dashboard.Config{BasePath: "/ops"})
	const q = "tenants"
	mustLimit(t, c, q, job.Limit{Scope: job.ScopeKey, MaxRunning: 2, Rate: rate(t, "10/s:3")})
	n := map[string]int{"": 1}
	want := []string{""}
	for i := range 60 {
		k := fmt.Sprintf("k%03d", i)
		n[k] = 1
		want = append(want, k)
	}
	enqueueFair(t, c, q, n)
	fetchRunning(t, c, q, 61)
	cases := []struct {
		path   string
		keys   []string
		in     []string
		noLink []string
	}{
		{"/queues/tenants/limits?norefresh", want[:50], []string{"Keys 1–50 of 61, 50 a page", `id="next" rel="next" href="/ops/queues/tenants/limits?offset=50"`,
			`<i title="jobs without a fair key">(default)</i>`}, []string{"prev"}},
		{"/queues/tenants/limits?offset=50&norefresh", want[50:], []string{"Keys 51–61 of 61", `id="prev" rel="prev" href="/ops/queues/tenants/limits?offset=0"`}, []string{"next"}},
		{"/queues/tenants/limits?offset=100&norefresh", nil, []string{"No key at offset 100 (61 in all)", `href="/ops/queues/tenants/limits?offset=50"`}, []string{"next"}},
	}
	for _, tc := range cases {
		data := checkPage(t, cl, tc.path, 200, tc.in, nil, tc.noLink)
		var keys []string
		for _, m := range limitKeyRow.FindAllSubmatch(data, -1) {
			keys = append(keys, string(m[1]))
			row := string(m[2])
			if !strings.Contains(row, `<meter min="0" max="2" value="1"></meter> 1 / 2`) ||
				!regexp.MustCompile(`<meter min="0" max="3" value="[0-3]\.\d"></meter> [0-3]\.\d / 3</td>$`).MatchString(row) {
				t.Errorf("%s: key %q: %s", tc.path, m[1], row)
			}
		}
		if !slices.Equal(keys, tc.keys) {
			t.Errorf("%s lists %v, want %v", tc.path, keys, tc.keys)
		}
	}
	code, data := cl.do("GET", "/api/queues/tenants/limits?offset=60&limit=5", nil)
	var v dashboard.LimitsView
	if code != 200 || json.Unmarshal(data, &v) != nil || v.KeysTotal != 61 || v.Offset != 60 || len(v.Keys) != 1 || v.Keys[0].Key != "k059" ||
		v.Keys[0].Running != 1 || v.Keys[0].Tokens == nil || v.FairMode != fairshare.ModeShare {
		t.Fatalf("API page: %d %s", code, data)
	}
}

// TestBrowserLimits: in chromium, the limits page is reached from the queue page's
// link; a cap set from the form above the table is listed with its use and read back
// by the Go client; a limit for a task whose name holds markup shows it as text and is
// cleared by its row's button; a refused rate shows the API's error in its row and
// changes nothing.
func TestBrowserLimits(t *testing.T) {
	ctx := browser(t, chromedp.WindowSize(1200, 800))
	c := queue.NewClient(redistest.Client(t), queue.Config{Logger: quiet})
	t.Cleanup(func() { _ = c.Close() })
	srv := httptest.NewServer(dashboard.New(c, dashboard.Config{Logger: quiet}))
	t.Cleanup(srv.Close)
	bg := context.Background()
	const q, xss = "media", "<script>alert(1)</script>"
	mustLimit(t, c, q, job.Limit{Scope: job.ScopeQueue, MaxRunning: 20})
	mustLimit(t, c, q, job.Limit{Scope: job.ScopeKey, MaxRunning: 2, Rate: rate(t, "5/s:5")})
	mustLimit(t, c, q, job.Limit{Scope: job.ScopeTask, Task: xss, MaxRunning: 1})
	// a worker's declaration, as one that starts with a task declaring its limits stores it
	if _, err := clientstore.Of(c).DeclareLimit(bg, q, job.Limit{Scope: job.ScopeTask, Task: "t", MaxRunning: 8, Rate: rate(t, "50/s:10")}); err != nil {
		t.Fatal(err)
	}
	enqueueFair(t, c, q, map[string]int{"acme": 3, "globex": 2, "": 1})
	fetchRunning(t, c, q, 5) // acme and globex at their cap of 2, the default key at 1
	b := tab{t, ctx}
	limit := func(task string) (job.LimitUse, bool) {
		t.Helper()
		uses, err := c.Limits(bg, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range uses {
			if u.Scope == job.ScopeTask && u.Task == task {
				return u, true
			}
		}
		return job.LimitUse{}, false
	}

	b.step("queue page", chromedp.Navigate(srv.URL+"/queues/"+q+"?norefresh"), chromedp.WaitVisible("#limits-link"), acceptConfirms)
	b.step("follow the limits link", chromedp.Click("#limits-link"), chromedp.WaitVisible("#limits"), acceptConfirms)
	b.waitText(`#limits tr[data-limit="task:t"]`, "5 / 8")
	b.waitText(`#limits tr[data-limit="task:t"] td.source`, "declared")
	b.waitText(`#limit-keys tr[data-key="acme"]`, "2 / 2")
	if s := b.text("#limits"); !strings.Contains(s, xss) {
		t.Fatalf("the limits show %q", s)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main script").length`)); n != 0 {
		t.Fatal("a task name became a script element")
	}

	// a cap for task resize from the form above the table
	b.reloads("set a cap", "#limits", chromedp.SetValue(`#set-limit select[name="scope"]`, "task"),
		chromedp.SetValue(`#set-limit input[name="task"]`, "resize"), chromedp.SetValue(`#set-limit input[name="max_running"]`, "3"),
		chromedp.Click("#set-limit button"))
	b.waitText(`#limits tr[data-limit="task:resize"] td.running`, "0 / 3")
	if u, ok := limit("resize"); !ok || u.MaxRunning != 3 || !u.Rate.IsZero() || u.Declared {
		t.Fatalf("resize after setting a cap of 3: %+v %v", u, ok)
	}

	// the markup-named task's limit cleared from its row
	clearXSS := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`[...document.querySelectorAll("#limits tr[data-limit]")].find((r) => r.dataset.limit === "task:" + `+
			jsString(xss)+`).querySelector("button[data-post]").click(); true`)(ctx, tg)
		return err
	})
	b.reloads("clear the markup-named task's limit", "#limits", clearXSS)
	if _, ok := limit(xss); ok {
		t.Fatal("the markup-named task's limit is still set")
	}
	if s := b.text("#limits"); strings.Contains(s, xss) {
		t.Fatalf("the cleared limit is still listed: %q", s)
	}

	// a refused rate: the API's error in the row, and the limit as it was
	row := `#limits tr[data-limit="task:resize"] `
	b.step("a bad rate", chromedp.SetValue(row+`input[name="rate"]`, "100/x"), chromedp.Click(row+"button"))
	b.waitText(row+"output", `chronoq: bad RateLimit "100/x": the unit "x" is not s, m or h`)
	if u, ok := limit("resize"); !ok || u.MaxRunning != 3 || !u.Rate.IsZero() {
		t.Fatalf("resize after a refused rate: %+v %v", u, ok)
	}
	shot(t, ctx, "limits")
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }
