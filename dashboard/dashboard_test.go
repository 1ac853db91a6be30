package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/worker"
	"github.com/chronoq/chronoq/worker/prommetrics"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { redistest.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type client struct {
	t      *testing.T
	srv    *httptest.Server
	http   *http.Client
	csrf   string
	header http.Header
	host   string // the Host header, when not the server's address
}

func setup(t *testing.T, cfg dashboard.Config) (*client, *queue.Client) {
	t.Helper()
	testutil.CheckLeaks(t)
	c := queue.NewClient(redistest.Client(t), queue.Config{Logger: quiet})
	t.Cleanup(func() { _ = c.Close() })
	cfg.Logger = quiet
	srv := httptest.NewServer(dashboard.New(c, cfg))
	t.Cleanup(srv.Close)
	jar := &cookieJar{}
	return &client{t: t, srv: srv, http: &http.Client{Jar: jar}, header: http.Header{}}, c
}

func (cl *client) do(method, path string, body any) (int, []byte) {
	cl.t.Helper()
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, cl.srv.URL+path, r)
	if cl.csrf != "" {
		req.Header.Set("X-CSRF-Token", cl.csrf)
	}
	return cl.send(req)
}

// send does req with the client's cookies, headers and Host.
func (cl *client) send(req *http.Request) (int, []byte) {
	cl.t.Helper()
	for k, v := range cl.header {
		req.Header[k] = v
	}
	if cl.host != "" {
		req.Host = cl.host
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		cl.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func (cl *client) token() {
	cl.t.Helper()
	code, data := cl.do("GET", "/api/csrf", nil)
	var v map[string]string
	if code != 200 || json.Unmarshal(data, &v) != nil {
		cl.t.Fatalf("csrf: %d %s", code, data)
	}
	cl.csrf = v["csrf_token"]
}

func TestViewsActionsAndEscaping(t *testing.T) {
	cl, c := setup(t, dashboard.Config{})
	ctx := context.Background()
	// an action without the CSRF token is refused
	if code, _ := cl.do("POST", "/api/queues/default/jobs", map[string]any{"task": "x"}); code != http.StatusForbidden {
		t.Fatalf("POST without CSRF: %d", code)
	}
	cl.token()
	code, data := cl.do("POST", "/api/queues/default/jobs", map[string]any{"task": "emails.send", "args": map[string]string{"to": "<script>alert(1)</script>"}, "priority": 7, "fair_key": "tenant-42"})
	if code != http.StatusCreated {
		t.Fatalf("enqueue: %d %s", code, data)
	}
	var created map[string]any
	_ = json.Unmarshal(data, &created)
	id := created["id"].(string)
	code, data = cl.do("GET", "/api/queues/default/jobs/"+id, nil)
	if code != 200 || bytes.Contains(data, []byte("<script>")) || !bytes.Contains(data, []byte(`\u003cscript\u003e`)) {
		t.Fatalf("job view must escape markup: %d %s", code, data)
	}
	var jv map[string]any
	_ = json.Unmarshal(data, &jv)
	if jv["task"] != "emails.send" || jv["priority"].(float64) != 7 || jv["state"] != "pending" || jv["fair_key"] != "tenant-42" {
		t.Fatalf("job view %v", jv)
	}
	for _, path := range []string{"/api/queues", "/api/queues/default", "/api/queues/default/jobs?state=pending",
		"/api/queues/default/jobs?state=failed", "/api/queues/default/ranking", "/api/queues/default/fair", "/api/workers", "/api/beat"} {
		if code, data := cl.do("GET", path, nil); code != 200 || !json.Valid(data) {
			t.Errorf("%s: %d %s", path, code, data)
		}
	}
	if code, _ := cl.do("GET", "/api/queues/default/jobs?state=weird", nil); code != http.StatusBadRequest {
		t.Errorf("bad state: %d", code)
	}
	if code, _ := cl.do("GET", "/api/queues/default/jobs/nope", nil); code != http.StatusNotFound {
		t.Errorf("unknown job: %d", code)
	}
	if code, data := cl.do("POST", "/api/queues/default/jobs", map[string]any{"task": "t", "priority": 12}); code != http.StatusBadRequest || !bytes.Contains(data, []byte("Priority=12")) {
		t.Errorf("bad option: %d %s", code, data)
	}
	if code, data := cl.do("POST", "/api/queues/default/jobs", map[string]any{"task": "t", "fair_key": ""}); code != http.StatusCreated {
		t.Errorf("an empty fair_key is no fair key: %d %s", code, data)
	}
	if code, data := cl.do("POST", "/api/queues/default/jobs", map[string]any{"task": "t", "fair_key": strings.Repeat("k", 129)}); code != http.StatusBadRequest || !bytes.Contains(data, []byte("must be 1 to 128 bytes")) {
		t.Errorf("an over-long fair key: %d %s", code, data)
	}
	// a failed job, requeued from the dashboard
	h, err := c.EnqueueByName(ctx, "flaky", nil, job.MaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	// take it (a fetch may stop at a lane its caller has not seen yet; the next one
	// learns it) and fail it for good
	for failed := false; !failed; {
		got, err := clientstore.Of(c).Fetch(ctx, "default", "w", 10, time.Minute)
		if err != nil || len(got) == 0 {
			t.Fatalf("fetch: %v", err)
		}
		for _, f := range got {
			if f.ID == h.ID {
				if ok, err := clientstore.Of(c).Fail(ctx, "default", "w", storeFailure(f.ID)); err != nil || !ok {
					t.Fatalf("fail: %v %v", ok, err)
				}
				failed = true
			}
		}
	}
	if code, data := cl.do("POST", "/api/queues/default/jobs/"+h.ID+"/requeue", nil); code != 200 || !bytes.Contains(data, []byte(`"requeued":1`)) {
		t.Fatalf("requeue: %d %s", code, data)
	}
	if st, _ := h.State(ctx); st != job.StatePending {
		t.Fatalf("after requeue: %s", st)
	}
	steps := []struct {
		path string
		body any
		code int
		in   string
	}{
		{"/api/queues/default/pause", nil, 200, `"paused":true`},
		{"/api/queues/default/resume", nil, 200, `"paused":false`},
		{"/api/queues/default/ranking", map[string]any{"mode": "active", "rule": "fixed", "w": 8}, 200, `"mode":"active"`},
		{"/api/queues/default/ranking", map[string]any{"mode": "turbo"}, 400, "turbo"},
		{"/api/queues/default/fair", map[string]any{"mode": "share", "key": "tenant-42", "weight": 2}, 200, `"ok":true`},
		{"/api/queues/default/fair", map[string]any{"mode": "fast"}, 400, "fast"},
		{"/api/queues/default/fair", map[string]any{"key": "tenant-42", "weight": 0}, 400, "tenant-42"},
		{"/api/queues/default/fair", map[string]any{"key": "tenant-42"}, 400, "weight"},
		{"/api/queues/default/jobs/" + h.ID + "/cancel", nil, 200, "canceled"},
		{"/api/queues/default/jobs/" + h.ID + "/cancel", nil, 409, "already ended"},
		{"/api/queues/default/jobs/nope/cancel", nil, 404, "not found"},
		{"/api/queues/default/purge?state=pending", nil, 200, `"purged":`},
		{"/api/queues/default/purge?state=active", nil, 400, "cannot purge"},
	}
	for _, s := range steps {
		if code, data := cl.do("POST", s.path, s.body); code != s.code || !bytes.Contains(data, []byte(s.in)) {
			t.Errorf("%s: %d %s, want %d with %q", s.path, code, data, s.code, s.in)
		}
	}
	// a running job: its page offers Stop, and cancel asks its worker to stop it
	run, err := c.EnqueueByName(ctx, "slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the slow job fetched", func() bool {
		_, _ = clientstore.Of(c).Fetch(ctx, "default", "w", 10, time.Minute)
		st, _ := run.State(ctx)
		return st == job.StateActive
	})
	if code, data := cl.do("GET", "/queues/default/jobs/"+run.ID, nil); code != 200 || !bytes.Contains(data, []byte(">Stop</button>")) {
		t.Fatalf("running job page: %d, no Stop button", code)
	}
	// the workers page lists what each worker runs, each with Stop
	if err := clientstore.Of(c).Heartbeat(ctx, store.WorkerInfo{ID: "w", Host: "h", Queues: []string{"default"}, Concurrency: 6, Slots: 3, Started: time.Now(),
		Running: []store.RunningJob{{ID: run.ID, Queue: "default", Task: "slow", Started: time.Now()}}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if code, data := cl.do("GET", "/workers", nil); code != 200 || !bytes.Contains(data, []byte(`/queues/default/jobs/`+run.ID+`"`)) || !bytes.Contains(data, []byte(">Stop</button>")) {
		t.Fatalf("workers page: %d, no running job with Stop:\n%s", code, data)
	}
	// and its slots (autoscaled: 3 of at most 6), on the page and in the API
	if code, data := cl.do("GET", "/workers", nil); code != 200 || !bytes.Contains(data, []byte("<th>Slots</th>")) || !bytes.Contains(data, []byte("<td>6</td><td>3</td>")) {
		t.Fatalf("workers page: %d, no slots column with 3 slots of 6:\n%s", code, data)
	}
	if code, data := cl.do("GET", "/api/workers", nil); code != 200 || !bytes.Contains(data, []byte(`"concurrency":6,"slots":3`)) {
		t.Fatalf("workers API: %d %s, want concurrency 6 and slots 3", code, data)
	}
	if code, data := cl.do("POST", "/api/queues/default/jobs/"+run.ID+"/cancel", nil); code != 200 || !bytes.Contains(data, []byte(`"stopping":"`+run.ID)) {
		t.Fatalf("stop a running job: %d %s", code, data)
	}
	// the canceled job is kept, on its own tab, and counted on the overview
	if code, data := cl.do("GET", "/queues/default?state=canceled", nil); code != 200 || !bytes.Contains(data, []byte(h.ID)) {
		t.Fatalf("canceled tab: %d, lacks %s", code, h.ID)
	}
	if code, data := cl.do("GET", "/api/queues/default", nil); code != 200 || !bytes.Contains(data, []byte(`"canceled":1`)) {
		t.Fatalf("counts: %d %s, want one canceled", code, data)
	}
	if cfg, _ := c.Ranking(ctx, "default"); cfg.Mode != "active" || cfg.W != 8 {
		t.Errorf("ranking not switched: %+v", cfg)
	}
	if m, _ := c.FairMode(ctx, "default"); m != "share" {
		t.Errorf("fair mode not switched: %s", m)
	}
	if k, _ := c.FairKey(ctx, "default", "tenant-42"); k.Weight != 2 {
		t.Errorf("weight not set by the good request, or changed by a refused one: %+v", k)
	}
	if code, data := cl.do("GET", "/api/queues/default/fair?limit=10", nil); code != 200 || !bytes.Contains(data, []byte(`"mode":"share"`)) {
		t.Errorf("fair view: %d %s", code, data)
	}
	code, data = cl.do("GET", "/metrics", nil)
	if code != 200 || !strings.Contains(string(data), `chronoq_jobs{queue="default",state="pending"}`) || !strings.Contains(string(data), "chronoq_processed_total") {
		t.Fatalf("metrics: %d %s", code, data)
	}
}

func TestAuthAndReadOnly(t *testing.T) {
	cl, _ := setup(t, dashboard.Config{User: "ops", Password: "s3cret", ReadOnly: true})
	if code, _ := cl.do("GET", "/api/queues", nil); code != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d", code)
	}
	cl.header.Set("Authorization", "Basic b3BzOndyb25n") // ops:wrong
	if code, _ := cl.do("GET", "/api/queues", nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	cl.header.Set("Authorization", "Basic b3BzOnMzY3JldA==") // ops:s3cret
	if code, _ := cl.do("GET", "/api/queues", nil); code != 200 {
		t.Fatalf("good credentials: %d", code)
	}
	if _, page := cl.do("GET", "/queues/default", nil); !bytes.Contains(page, []byte(`<body class="read-only">`)) {
		t.Fatalf("a read-only page does not hide its actions:\n%s", page)
	}
	cl.token()
	if code, data := cl.do("POST", "/api/queues/default/pause", nil); code != http.StatusForbidden || !bytes.Contains(data, []byte("read-only")) {
		t.Fatalf("read-only: %d %s", code, data)
	}
	bearer, _ := setup(t, dashboard.Config{Token: "t0ken"})
	bearer.header.Set("Authorization", "Bearer t0ken")
	if code, _ := bearer.do("GET", "/api/workers", nil); code != 200 {
		t.Fatalf("bearer: %d", code)
	}
}

func TestPagesRenderAndEscape(t *testing.T) {
	cl, c := setup(t, dashboard.Config{})
	ctx := context.Background()
	h, err := c.EnqueueByName(ctx, "emails.send", map[string]string{"to": "<script>alert(1)</script>"})
	if err != nil {
		t.Fatal(err)
	}
	// a fair key and a tag holding markup
	xssKey := `<script>alert(1)</script>"'&`
	enqueueFair(t, c, "tenants", map[string]int{xssKey: 2, "plain": 1})
	if err := c.SetFairTags(ctx, "tenants", xssKey, map[string]string{"<marquee>": "<script>alert(2)</script>"}); err != nil {
		t.Fatal(err)
	}
	pages := []struct{ path, want string }{
		{"/", `href="/queues/default"`},
		{"/queues/default", h.ID},
		{"/queues/default?state=failed", "No failed job"},
		{"/queues/default/jobs/" + h.ID, "emails.send"},
		{"/queues/default/ranking", "Switch to active"},
		{"/queues/default", `href="/queues/default/fair"`},
		{"/queues/default/fair", "Switch to share"},
		{"/queues/tenants/fair", `<tr data-key="&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;"><td class="key">&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;</td>`},
		{"/queues/tenants/fair", `<span class="tag">&lt;marquee&gt;=&lt;script&gt;alert(2)&lt;/script&gt;</span>`},
		{"/queues/tenants/fair", `<input type="hidden" name="key" value="&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;">`},
		{"/workers", "No live worker"},
		{"/beat", "No beat entry"},
		{"/static/app.js", "X-CSRF-Token"},
	}
	for _, p := range pages {
		code, body := cl.do("GET", p.path, nil)
		if code != 200 || !strings.Contains(string(body), p.want) {
			t.Errorf("%s: %d, want %q in\n%s", p.path, code, p.want, body)
		}
		if strings.Contains(string(body), "<script>alert") || strings.Contains(string(body), "<marquee") {
			t.Errorf("%s shows markup from a job, a key or a tag unescaped", p.path)
		}
	}
	_, body := cl.do("GET", "/queues/default/jobs/"+h.ID, nil)
	if !strings.Contains(string(body), "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the payload must show as text:\n%s", body)
	}
	if code, _ := cl.do("GET", "/queues/default/jobs/nope", nil); code != http.StatusNotFound {
		t.Errorf("unknown job page: %d", code)
	}
}

// TestMetricsAndActivityFromAWorker runs a real worker whose registry the dashboard
// serves: its histograms and outcome counters reach /metrics, and the overview shows
// the queue's throughput, failure rate and wait from the activity ring.
func TestMetricsAndActivityFromAWorker(t *testing.T) {
	reg := prometheus.NewRegistry()
	cl, c := setup(t, dashboard.Config{Metrics: reg})
	ctx := context.Background()
	obs, err := prommetrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(c, worker.Config{Queues: []worker.QueueConfig{{Name: "default"}}, Concurrency: 4, Logger: quiet, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	w.HandleFunc("ok", func(ctx context.Context, j *job.Job) (any, error) { return nil, nil })
	w.HandleFunc("bad", func(ctx context.Context, j *job.Job) (any, error) { return nil, job.SkipRetry(errors.New("no")) })
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop(context.Background()) })
	var hs []*queue.Handle
	for i := range 10 {
		task := "ok"
		if i < 2 {
			task = "bad"
		}
		h, err := c.EnqueueByName(ctx, task, nil)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	for _, h := range hs {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, _ = h.Wait(wctx)
		cancel()
	}
	// outcomes are counted once Redis has answered the worker's acknowledgement
	wants := []string{
		`chronoq_job_duration_seconds_count{queue="default",task="ok"} 8`,
		`chronoq_enqueue_to_start_seconds_count{queue="default",task="bad"} 2`,
		`chronoq_job_outcomes_total{outcome="failed",queue="default",task="bad"} 2`,
		`chronoq_job_outcomes_total{outcome="succeeded",queue="default",task="ok"} 8`,
		`chronoq_jobs{queue="default",state="failed"} 2`,
	}
	var text string
	testutil.Eventually(t, 10*time.Second, "every outcome in /metrics", func() bool {
		code, data := cl.do("GET", "/metrics", nil)
		text = string(data)
		for _, want := range wants {
			if code != 200 || !strings.Contains(text, want) {
				return false
			}
		}
		return true
	})
	type recentView struct {
		Succeeded   int64   `json:"succeeded"`
		Failed      int64   `json:"failed"`
		FailureRate float64 `json:"failure_rate"`
		ByMinute    []any   `json:"by_minute"`
	}
	// the worker flushes its tallies to the activity ring about once a second
	var last recentView
	testutil.Eventually(t, 10*time.Second, "the ring holds every outcome", func() bool {
		var qs []struct {
			Recent recentView `json:"recent"`
		}
		code, data := cl.do("GET", "/api/queues", nil)
		if code != 200 || json.Unmarshal(data, &qs) != nil || len(qs) != 1 {
			t.Fatalf("queues: %d %s", code, data)
		}
		last = qs[0].Recent
		return last.Succeeded == 8 && last.Failed == 2
	})
	if last.FailureRate != 0.2 || len(last.ByMinute) != 15 {
		t.Errorf("recent activity %+v", last)
	}
	code, data := cl.do("GET", "/", nil)
	if code != 200 || !bytes.Contains(data, []byte(`class="spark"`)) || !bytes.Contains(data, []byte("20.0%")) {
		t.Errorf("overview lacks the throughput line and failure rate 20.0%%: %d %s", code, data)
	}
}

// TestMountedUnderAPrefix: mounted at /ops/chronoq/ in a user's own mux, every link and
// action of a page starts with the prefix, and following them works.
func TestMountedUnderAPrefix(t *testing.T) {
	testutil.CheckLeaks(t)
	c := queue.NewClient(redistest.Client(t), queue.Config{Logger: quiet})
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.EnqueueByName(context.Background(), "t", nil); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ops/chronoq/", http.StripPrefix("/ops/chronoq", dashboard.New(c, dashboard.Config{BasePath: "/ops/chronoq/", Logger: quiet})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	for _, path := range []string{"/ops/chronoq/queues/default", "/ops/chronoq/queues/default/fair"} {
		page := get(path)
		links := regexp.MustCompile(`(?:href|src|data-post)="([^"]*)"`).FindAllStringSubmatch(page, -1)
		if len(links) < 5 {
			t.Fatalf("%s: few links: %v", path, links)
		}
		for _, l := range links {
			if !strings.HasPrefix(l[1], "/ops/chronoq/") {
				t.Errorf("%s: link %q lacks the prefix", path, l[1])
			} else if !strings.Contains(l[1], "/api/") {
				get(l[1]) // pages, assets
			}
		}
	}
}

// TestFairPage: the fair page shows each key's pending and running jobs, share and
// worker time, weight, SkipIfLate, tags and last service, as the key view has them; the
// default key is named (default); weights set through the API show; a read-only
// dashboard shows the weights as text, with no form.
func TestFairPage(t *testing.T) {
	cl, c := setup(t, dashboard.Config{})
	ctx := context.Background()
	q := "tenants"
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.SetFairWeight(ctx, q, "big", 2.5))
	must(c.SetFairTags(ctx, q, "big", map[string]string{"region": "eu", "plan": "gold"}))
	must(c.SetFairLateness(ctx, q, "small", 90*time.Second))
	enqueueFair(t, c, q, map[string]int{"big": 6, "small": 3, "": 2})
	serveFair(t, c, q, 4) // three jobs run and succeed, one more is running
	cl.token()
	for _, p := range []struct {
		body map[string]any
		code int
		in   string
	}{
		{map[string]any{"key": "", "weight": 0.5}, 200, `"ok":true`},
		{map[string]any{"key": "small", "weight": 101}, 400, `fair key \"small\": chronoq: bad fair-share weight 101: must be a number from 0.01 to 100`},
	} {
		if code, data := cl.do("POST", "/api/queues/"+q+"/fair", p.body); code != p.code || !bytes.Contains(data, []byte(p.in)) {
			t.Fatalf("POST %v: %d %s, want %d with %s", p.body, code, data, p.code, p.in)
		}
	}
	keys, total, err := c.FairKeys(ctx, q, 0, 10)
	must(err)
	if total != 3 || len(keys) != 3 {
		t.Fatalf("%d keys %+v", total, keys)
	}
	code, page := cl.do("GET", "/queues/"+q+"/fair?norefresh", nil)
	if code != 200 {
		t.Fatalf("fair page: %d %s", code, page)
	}
	rows := map[string]string{}
	var order []string
	for _, m := range regexp.MustCompile(`(?s)<tr data-key="([^"]*)">(.*?)</tr>`).FindAllSubmatch(page, -1) {
		rows[string(m[1])] = string(m[2])
		order = append(order, string(m[1]))
	}
	running := 0
	for i, k := range keys {
		row, ok := rows[k.Key]
		if !ok || order[i] != k.Key {
			t.Fatalf("the page lists %v, the key view %+v", order, keys)
		}
		running += k.Running
		want := []string{fmt.Sprintf(`<td class="pending">%d</td><td>%d</td>`, k.Pending, k.Running), fmt.Sprintf(`value="%v"`, k.Weight)}
		if k.UsedMs > 0 {
			want = append(want, fmt.Sprintf(`<td class="share">%.1f%%</td>`, k.Share*100))
		} else {
			want = append(want, `<td class="share">–</td>`)
		}
		for _, w := range want {
			if !strings.Contains(row, w) {
				t.Errorf("key %q (%+v): its row lacks %q:\n%s", k.Key, k, w, row)
			}
		}
		served := `<td>–</td>`
		if !k.LastServed.IsZero() { // served a moment ago
			served = `<td><span title="` + regexp.QuoteMeta(k.LastServed.Format("2006-01-02 15:04:05.000 MST")) + `">(just now|\d+\.\d s ago)</span></td>`
		}
		if !regexp.MustCompile(served + `$`).MatchString(row) {
			t.Errorf("key %q (%+v): its row does not end in %s:\n%s", k.Key, k, served, row)
		}
	}
	if running != 1 {
		t.Errorf("the keys run %d jobs, want 1: %+v", running, keys)
	}
	for key, want := range map[string][]string{
		"big":   {`value="2.5"`, `<span class="tag">plan=gold</span> <span class="tag">region=eu</span>`},
		"small": {"<td>1m30s</td>"},
		"":      {`<i title="jobs without a fair key">(default)</i>`, `value="0.5"`, `data-name="(default)"`, `<input type="hidden" name="key" value="">`},
	} {
		for _, w := range want {
			if !strings.Contains(rows[key], w) {
				t.Errorf("key %q: its row lacks %q:\n%s", key, w, rows[key])
			}
		}
	}
	for _, w := range []string{`<b id="mode">share</b>`, `data-body='{"mode":"lru"}'`, `data-body='{"mode":"off"}'`, "Keys 1–3 of 3"} {
		if !bytes.Contains(page, []byte(w)) {
			t.Errorf("the page lacks %q", w)
		}
	}
	if bytes.Contains(page, []byte(`data-body='{"mode":"share"}'`)) {
		t.Error("the page offers a switch to the mode the queue is in")
	}
	// (default) names the default key in the API too
	if code, data := cl.do("POST", "/api/queues/"+q+"/fair", map[string]any{"key": "(default)", "weight": 3}); code != 200 {
		t.Fatalf("weight of (default): %d %s", code, data)
	}
	if k, err := c.FairKey(ctx, q, ""); err != nil || k.Weight != 3 {
		t.Fatalf("the default key after setting (default): %+v %v", k, err)
	}

	ro := httptest.NewServer(dashboard.New(c, dashboard.Config{ReadOnly: true, Logger: quiet}))
	t.Cleanup(ro.Close)
	resp, err := http.Get(ro.URL + "/queues/" + q + "/fair?norefresh")
	must(err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`<td class="weight">2.5</td>`)) || bytes.Contains(body, []byte(`data-name=`)) ||
		!bytes.Contains(body, []byte(`<body class="read-only">`)) {
		t.Errorf("read-only fair page: %d, want weights as text and no key form:\n%s", resp.StatusCode, body)
	}
}
