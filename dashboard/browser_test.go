package dashboard_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

// browser starts Debian's chromium headless, as the machine's network allows it, with
// any further options.
func browser(t *testing.T, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	testutil.CheckLeaks(t)
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is missing (.ci/run installs it)")
		}
		t.Skip("chromium not installed (apt-get install chromium); CI runs this test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	alloc, acancel := chromedp.NewExecAllocator(ctx, append([]chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.Headless,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir())}, opts...)...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(alloc)
	t.Cleanup(bcancel)
	return bctx
}

// shot keeps a screenshot of the current page as a test artifact (not committed).
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "artifacts", "dashboard")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	}
}

// tab is a test's chromium tab, with the steps its tests take.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// step runs actions, failing the test with name.
func (b tab) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", name, err)
	}
}

// text is what sel shows.
func (b tab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(sel))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// waitText waits until sel shows want; reads fail while a page reloads, so they are
// retried until the deadline.
func (b tab) waitText(sel, want string) {
	b.t.Helper()
	testutil.Eventually(b.t, 10*time.Second, sel+" shows "+want, func() bool {
		s, err := chromedp.Run(b.ctx, chromedp.Text(sel))
		return err == nil && strings.Contains(s, want)
	})
}

// reloads runs actions that end in the page reloading, and waits for the new page to
// show sel (the old one is marked, so a read of it does not pass for the new one).
func (b tab) reloads(name, sel string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`window.chronoqOld = "yes"; "marked"`)); err != nil {
		b.t.Fatalf("%s: mark the page: %v", name, err)
	}
	b.step(name, actions...)
	testutil.Eventually(b.t, 10*time.Second, name+": the page reloaded", func() bool {
		s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(window.chronoqOld || "no") + " " + document.readyState`))
		return err == nil && s == "no complete"
	})
	b.step(name+": the new page", chromedp.WaitVisible(sel), acceptConfirms)
}

// browserDashboard is a chromium tab, a client on the test's Redis and a dashboard
// served on a loopback port.
func browserDashboard(t *testing.T) (context.Context, *queue.Client, *httptest.Server) {
	t.Helper()
	ctx := browser(t)
	c := queue.NewClient(redistest.Client(t), queue.Config{Logger: quiet})
	t.Cleanup(func() { _ = c.Close() })
	srv := httptest.NewServer(dashboard.New(c, dashboard.Config{Logger: quiet}))
	t.Cleanup(srv.Close)
	return ctx, c, srv
}

// acceptConfirms answers confirm() dialogs yes, and stops pages refreshing themselves.
var acceptConfirms = chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
	_, err := chromedp.Evaluate[any]("window.confirm = () => true; document.cookie = 'chronoq_norefresh=1; path=/'; 1")(ctx, tg)
	return err
})

func TestBrowser(t *testing.T) {
	ctx, c, srv := browserDashboard(t)
	bg := context.Background()
	xss, err := c.EnqueueByName(bg, "emails.send", map[string]string{"to": "<script>alert(1)</script>"})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := c.EnqueueByName(bg, "reports.build", nil, job.MaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	for failed := false; !failed; {
		got, err := clientstore.Of(c).Fetch(bg, "default", "w", 10, time.Minute)
		if err != nil || len(got) == 0 {
			t.Fatalf("fetch: %v", err)
		}
		for _, f := range got {
			if f.ID == bad.ID {
				_, _ = clientstore.Of(c).Fail(bg, "default", "w", store.Failure{ID: f.ID, Error: "report service down"})
				failed = true
			} else {
				_, _ = clientstore.Of(c).HandBack(bg, "default", "w", []store.Lease{f.Lease()})
			}
		}
	}
	step := tab{t, ctx}.step
	text := tab{t, ctx}.text
	waitText := tab{t, ctx}.waitText

	// the overview, then the queue it lists
	step("overview", chromedp.Navigate(srv.URL+"/?norefresh"), chromedp.WaitVisible("#queues"), acceptConfirms)
	if s := text("#queues"); !strings.Contains(s, "default") {
		t.Fatalf("overview: %q", s)
	}
	shot(t, ctx, "overview")
	step("follow the queue", chromedp.Click(`a[href="/queues/default"]`), chromedp.WaitVisible("#jobs"))
	if s := text("#jobs"); !strings.Contains(s, xss.ID) {
		t.Fatalf("queue page lacks %s: %q", xss.ID, s)
	}
	shot(t, ctx, "queue")

	// requeue the failed job from its row; its state changes
	step("failed jobs", chromedp.Navigate(srv.URL+"/queues/default?state=failed"), chromedp.WaitVisible("#jobs"), acceptConfirms)
	if s := text("#jobs"); !strings.Contains(s, "report service down") {
		t.Fatalf("failed list: %q", s)
	}
	shot(t, ctx, "failed")
	step("requeue", chromedp.Click(`button[data-post$="/jobs/`+bad.ID+`/requeue"]`))
	waitText("#jobs", "No failed job") // the page reloads after the action
	testutil.Eventually(t, 10*time.Second, "the job is pending again", func() bool {
		st, _ := bad.State(bg)
		return st == job.StatePending
	})
	step("after requeue", chromedp.Navigate(srv.URL+"/queues/default/jobs/"+bad.ID), chromedp.WaitVisible("#state"))
	if s := text("#state"); s != "pending" {
		t.Fatalf("job page shows %q", s)
	}

	// markup in a job's arguments is shown as text
	step("job page", chromedp.Navigate(srv.URL+"/queues/default/jobs/"+xss.ID), chromedp.WaitVisible("#args"))
	if s := text("#args"); !strings.Contains(s, "<script>alert(1)</script>") {
		t.Fatalf("args shown as %q", s)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main script").length`)); n != 0 {
		t.Fatal("a job's args became a script element")
	}
	shot(t, ctx, "job")

	// switch the ranking mode
	step("ranking", chromedp.Navigate(srv.URL+"/queues/default/ranking"), chromedp.WaitVisible("#mode"), acceptConfirms)
	step("switch", chromedp.Click(`button[data-body*="active"]`))
	waitText("#mode", "active")
	testutil.Eventually(t, 10*time.Second, "the queue is in active mode", func() bool {
		cfg, _ := c.Ranking(bg, "default")
		return cfg.Mode == ranking.ModeActive
	})
	shot(t, ctx, "ranking")
	step("workers", chromedp.Navigate(srv.URL+"/workers"), chromedp.WaitVisible("#workers"))
	shot(t, ctx, "workers")
	step("beat", chromedp.Navigate(srv.URL+"/beat"), chromedp.WaitVisible("#beat"))
	shot(t, ctx, "beat")
}

// TestBrowserPaging: in chromium, the queue page's Next and Previous links page through
// a state 100 jobs at a time.
func TestBrowserPaging(t *testing.T) {
	ctx := browser(t)
	c := queue.NewClient(redistest.Client(t), queue.Config{Logger: quiet})
	t.Cleanup(func() { _ = c.Close() })
	srv := httptest.NewServer(dashboard.New(c, dashboard.Config{Logger: quiet}))
	t.Cleanup(srv.Close)
	ids := enqueueN(t, c, "default", 150)
	step := tab{t, ctx}.step
	waitText := tab{t, ctx}.waitText
	step("queue page", chromedp.Navigate(srv.URL+"/queues/default?norefresh"), chromedp.WaitVisible("#paging"), acceptConfirms)
	waitText("#paging", "Jobs 1–100 of 150")
	waitText("#jobs", ids[99])
	step("next", chromedp.Click("#next"), chromedp.WaitVisible("#prev"))
	waitText("#paging", "Jobs 101–150 of 150")
	waitText("#jobs", ids[100])
	if s, _ := chromedp.Run(ctx, chromedp.Text("#jobs")); strings.Contains(s, ids[99]) {
		t.Fatalf("page 2 still lists the 100th job: %q", s)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#next").length`)); n != 0 {
		t.Fatal("the last page offers a Next link")
	}
	shot(t, ctx, "queue-page2")
	step("previous", chromedp.Click("#prev"), chromedp.WaitVisible("#next"))
	waitText("#paging", "Jobs 1–100 of 150")
	waitText("#jobs", ids[0])
}

// TestBrowserFair: in chromium, the fair page lists a queue's keys biggest backlog
// first, shows a key holding markup as text, switches the fair mode, and sets a key's
// weight from its row and the default key's from the key form; a weight out of bounds
// shows the API's error in the row and changes nothing. The Go client sees each change.
func TestBrowserFair(t *testing.T) {
	ctx, c, srv := browserDashboard(t)
	bg := context.Background()
	const xssKey = "<script>alert(1)</script>"
	enqueueFair(t, c, "tenants", map[string]int{"acme": 40, "globex": 25, "initech": 12, "": 6, xssKey: 3})
	for k, w := range map[string]float64{"acme": 2, "initech": 0.5} {
		if err := c.SetFairWeight(bg, "tenants", k, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetFairTags(bg, "tenants", "acme", map[string]string{"plan": "gold", "region": "eu"}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetFairLateness(bg, "tenants", "globex", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	serveFair(t, c, "tenants", 6)
	if err := c.SetFairMode(bg, "tenants", fairshare.ModeLRU); err != nil { // the page switches it back
		t.Fatal(err)
	}
	step := tab{t, ctx}.step
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	waitText := tab{t, ctx}.waitText
	reloads := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		tab{t, ctx}.reloads(name, "#keys", actions...)
	}
	weight := func(key string) float64 {
		t.Helper()
		k, err := c.FairKey(bg, "tenants", key)
		if err != nil {
			t.Fatal(err)
		}
		return k.Weight
	}

	// from the queue page's link
	step("queue page", chromedp.Navigate(srv.URL+"/queues/tenants?norefresh"), chromedp.WaitVisible("#fair-link"), acceptConfirms)
	step("follow the fair link", chromedp.Click("#fair-link"), chromedp.WaitVisible("#keys"), acceptConfirms)
	waitText("#mode", "lru")
	if first := eval(`document.querySelector("#keys tr[data-key]").dataset.key`); first != "acme" {
		t.Fatalf("the first key is %q, want acme (the biggest backlog)", first)
	}
	if s := eval(`document.querySelector("#keys").innerText`); !strings.Contains(s, xssKey) || !strings.Contains(s, "(default)") || !strings.Contains(s, "plan=gold") {
		t.Fatalf("the keys show %q", s)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main script").length`)); n != 0 {
		t.Fatal("a key became a script element")
	}

	// switch the mode
	reloads("switch to share", chromedp.Click(`button[data-body*='"share"']`))
	waitText("#mode", "share")
	if m, err := c.FairMode(bg, "tenants"); err != nil || m != fairshare.ModeShare {
		t.Fatalf("fair mode after the switch: %v %v", m, err)
	}

	// a key's weight from its row
	acme := `#keys tr[data-key="acme"] `
	reloads("acme's weight", chromedp.SetValue(acme+`input[name="weight"]`, "3"), chromedp.Click(acme+"button"))
	if w := weight("acme"); w != 3 {
		t.Fatalf("acme's weight after setting 3: %v", w)
	}
	if v := eval(`document.querySelector('` + acme + `input[name="weight"]').value`); v != "3" {
		t.Fatalf("the reloaded page shows acme's weight %q", v)
	}

	// out of bounds: the API's error shows in the row, and the weight stays
	step("acme's weight too large", chromedp.SetValue(acme+`input[name="weight"]`, "250"), chromedp.Click(acme+"button"))
	waitText(acme+"output", `fair key "acme": chronoq: bad fair-share weight 250: must be a number from 0.01 to 100`)
	if w := weight("acme"); w != 3 {
		t.Fatalf("acme's weight after a refused 250: %v", w)
	}
	shot(t, ctx, "fair-refused")

	// the default key's weight from the key form, by its shown name
	reloads("the default key's weight", chromedp.SetValue(`#set-weight input[name="key"]`, "(default)"),
		chromedp.SetValue(`#set-weight input[name="weight"]`, "0.25"), chromedp.Click("#set-weight button"))
	if w := weight(""); w != 0.25 {
		t.Fatalf("the default key's weight after setting 0.25: %v", w)
	}
	if v := eval(`document.querySelector('#keys tr[data-key=""] input[name="weight"]').value`); v != "0.25" {
		t.Fatalf("the reloaded page shows the default key's weight %q", v)
	}
	shot(t, ctx, "fair")
}

// answers keeps what a handler answered each POST: a page posting in no-cors mode
// cannot read the answer, so the test reads it here.
type answers struct {
	mu  sync.Mutex
	got []string // "status host path: body"
}

type teeWriter struct {
	http.ResponseWriter
	code int
	body bytes.Buffer
}

func (w *teeWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func (w *teeWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (a *answers) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &teeWriter{ResponseWriter: w}
		h.ServeHTTP(tw, r)
		if r.Method == http.MethodPost {
			a.mu.Lock()
			a.got = append(a.got, fmt.Sprintf("%d %s %s: %s", tw.code, r.Host, r.URL.Path, strings.TrimSpace(tw.body.String())))
			a.mu.Unlock()
		}
	})
}

// last is the answer to the last POST to host and path, "" before any.
func (a *answers) last(host, path string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.got) - 1; i >= 0; i-- {
		if strings.Contains(a.got[i], " "+host+" "+path+": ") {
			return a.got[i]
		}
	}
	return ""
}

// TestBrowserOrigins: in chromium, the dashboard's own pages act, at 127.0.0.1 and at
// localhost; a page on another port of localhost, which shares localhost's cookies and
// so can plant a CSRF cookie and send its value, cannot act; and a page whose name is
// rebound to 127.0.0.1 (chromium's resolver maps evil.example there) gets neither a
// token nor an action.
func TestBrowserOrigins(t *testing.T) {
	ctx := browser(t, chromedp.Flag("host-resolver-rules", "MAP evil.example 127.0.0.1"))
	c := queue.NewClient(redistest.Client(t), queue.Config{Logger: quiet})
	t.Cleanup(func() { _ = c.Close() })
	bg := context.Background()
	if _, err := c.EnqueueByName(bg, "emails.send", nil); err != nil {
		t.Fatal(err)
	}
	var seen answers
	srv := httptest.NewServer(seen.wrap(dashboard.New(c, dashboard.Config{Logger: quiet})))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<!doctype html><title>another site</title><p>nothing to see")
	}))
	t.Cleanup(other.Close)
	step := tab{t, ctx}.step
	paused := func() bool {
		t.Helper()
		n, err := c.Counts(bg, "default")
		if err != nil {
			t.Fatal(err)
		}
		return n.Paused
	}

	// the dashboard's own page, at either loopback name, acts
	for _, tc := range []struct {
		base, button, then string
		paused             bool
	}{{"http://127.0.0.1:" + port, "pause", "resume", true}, {"http://localhost:" + port, "resume", "pause", false}} {
		step("queue page at "+tc.base, chromedp.Navigate(tc.base+"/queues/default?norefresh"), chromedp.WaitVisible("#jobs"), acceptConfirms)
		// the page reloads after the action, and then offers the other button
		step(tc.button+" at "+tc.base, chromedp.Click(`button[data-post$="/`+tc.button+`"]`), chromedp.WaitVisible(`button[data-post$="/`+tc.then+`"]`))
		testutil.Eventually(t, 10*time.Second, tc.button+" from the page at "+tc.base, func() bool { return paused() == tc.paused })
		if a := seen.last(tc.base[len("http://"):], "/api/queues/default/"+tc.button); !strings.HasPrefix(a, "200 ") {
			t.Fatalf("%s from the page at %s: %s", tc.button, tc.base, a)
		}
	}

	// another port of localhost: it plants its own chronoq_csrf cookie (on a longer path,
	// so it is sent first) and posts the same value in the body and the query string, in
	// no-cors mode (no preflight)
	attack := `(async () => {
		const tok = "0123456789abcdef0123456789abcdef";
		document.cookie = "chronoq_csrf=" + tok + "; path=/api/";
		await fetch("http://localhost:` + port + `/api/queues/default/pause?csrf_token=" + tok,
			{method: "POST", mode: "no-cors", credentials: "include", body: new URLSearchParams({csrf_token: tok})});
		return "sent";
	})()`
	step("another site", chromedp.Navigate("http://localhost:"+other.URL[strings.LastIndex(other.URL, ":")+1:]+"/"))
	if sent, err := chromedp.Run(ctx, chromedp.Evaluate[string](attack, chromedp.EvalAwaitPromise)); err != nil || sent != "sent" {
		t.Fatalf("the other site's post: %q %v", sent, err)
	}
	var answer string
	testutil.Eventually(t, 10*time.Second, "the dashboard answered the other site's post", func() bool {
		answer = seen.last("localhost:"+port, "/api/queues/default/pause")
		return answer != ""
	})
	if !strings.HasPrefix(answer, "403 ") || !strings.Contains(answer, "from another origin") || paused() {
		t.Errorf("the other site's post: %s, paused %v", answer, paused())
	}
	if err := c.Resume(bg, "default"); err != nil { // the rebound page starts from a running queue either way
		t.Fatal(err)
	}

	// a rebound name: the page's own origin is evil.example, its requests reach 127.0.0.1
	step("rebound page", chromedp.Navigate("http://evil.example:"+port+"/?norefresh"))
	rebound := `(async () => {
		const r = await fetch("/api/csrf");
		const tok = r.ok ? (await r.json()).csrf_token : "";
		const p = await fetch("/api/queues/default/pause", {method: "POST", headers: {"X-CSRF-Token": tok}});
		return [r.status, p.status, (await p.json()).error || ""];
	})()`
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]any](rebound, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("the rebound page's requests: %v", err)
	}
	if len(got) != 3 || got[0] != 403.0 || got[1] != 403.0 || !strings.Contains(got[2].(string), "evil.example") || paused() {
		t.Fatalf("the rebound page got token status, pause status, error %v; paused %v", got, paused())
	}
	shot(t, ctx, "rebound")
}
