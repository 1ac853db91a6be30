package dashboard_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
)

// browser starts Debian's chromium headless, as the machine's network allows it.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is missing (.ci/run installs it)")
		}
		t.Skip("chromium not installed (apt-get install chromium); CI runs this test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	alloc, acancel := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()))
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

func TestBrowser(t *testing.T) {
	ctx := browser(t)
	c := queue.NewClient(redistest.Client(t), queue.Config{Logger: quiet})
	t.Cleanup(func() { _ = c.Close() })
	srv := httptest.NewServer(dashboard.New(c, dashboard.Config{Logger: quiet}))
	t.Cleanup(srv.Close)
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
		got, err := c.Store().Fetch(bg, "default", "w", 10, time.Minute)
		if err != nil || len(got) == 0 {
			t.Fatalf("fetch: %v", err)
		}
		for _, f := range got {
			if f.ID == bad.ID {
				_, _ = c.Store().Fail(bg, "default", "w", store.Failure{ID: f.ID, Error: "report service down"})
				failed = true
			} else {
				_, _ = c.Store().HandBack(bg, "default", "w", []store.Lease{f.Lease()})
			}
		}
	}
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// waitText waits until sel shows want; reads fail while a page reloads, so they are
	// retried until the deadline
	waitText := func(sel, want string) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, sel+" shows "+want, func() bool {
			s, err := chromedp.Run(ctx, chromedp.Text(sel))
			return err == nil && strings.Contains(s, want)
		})
	}
	// confirm() dialogs are answered yes, and pages stop refreshing themselves
	acceptConfirms := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[any]("window.confirm = () => true; document.cookie = 'chronoq_norefresh=1; path=/'; 1")(ctx, tg)
		return err
	})

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
