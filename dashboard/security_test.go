package dashboard_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/queue"
)

// TestHostCheckedWithoutCredentials: an open dashboard serves loopback names and the
// hosts it is told of, and refuses any other Host, token and actions included: a page
// that rebinds its name to 127.0.0.1 still sends that name. With credentials every
// Host is served, since such a page has none.
func TestHostCheckedWithoutCredentials(t *testing.T) {
	open, c := setup(t, dashboard.Config{AllowedHosts: []string{"Chronoq.Internal:8443"}})
	authed, _ := setup(t, dashboard.Config{Token: "t0ken"})
	authed.header.Set("Authorization", "Bearer t0ken")
	open.token() // at the server's own address, 127.0.0.1
	authed.token()
	cases := []struct {
		name string
		cl   *client
		host string
		ok   bool
	}{
		{"a rebound name", open, "evil.example", false},
		{"a rebound name with its port", open, "evil.example:8080", false},
		{"a name that starts like localhost", open, "localhost.evil.example", false},
		{"a subdomain of an allowed host", open, "x.chronoq.internal", false},
		{"127.0.0.1", open, "127.0.0.1:8080", true},
		{"another loopback address, no port", open, "127.0.0.2", true},
		{"localhost in any case", open, "LocalHost:1234", true},
		{"[::1]", open, "[::1]:8080", true},
		{"an allowed host on another port", open, "chronoq.internal:80", true},
		{"credentials set: any host", authed, "evil.example", true},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { resume(t, c) })
			tc.cl.host = tc.host
			defer func() { tc.cl.host = "" }()
			for _, r := range []struct{ method, path string }{{"GET", "/api/csrf"}, {"GET", "/"}, {"GET", "/api/queues"}, {"POST", "/api/queues/default/pause"}} {
				code, data := tc.cl.do(r.method, r.path, nil)
				if tc.ok && code != http.StatusOK {
					t.Errorf("%s %s with Host %q: %d %.200s, want 200", r.method, r.path, tc.host, code, data)
				}
				if !tc.ok && (code != http.StatusForbidden || !bytes.Contains(data, []byte("not served by a dashboard without credentials"))) {
					t.Errorf("%s %s with Host %q: %d %.200s, want 403 naming the host", r.method, r.path, tc.host, code, data)
				}
			}
			if n, _ := c.Counts(ctx, "default"); !tc.ok && n.Paused {
				t.Errorf("Host %q paused the queue", tc.host)
			}
		})
	}
}

// TestCrossOriginActionsRefused: a state change from another origin is refused even
// with the right token (a page on another port of localhost shares its cookies); the
// dashboard's own pages and clients without a browser's headers go through.
func TestCrossOriginActionsRefused(t *testing.T) {
	open, c := setup(t, dashboard.Config{})
	authed, _ := setup(t, dashboard.Config{Token: "t0ken"})
	authed.header.Set("Authorization", "Bearer t0ken")
	open.token()
	authed.token()
	cases := []struct {
		name string
		cl   *client
		hdr  map[string]string
		ok   bool
	}{
		{"no browser headers (curl, other languages)", open, nil, true},
		{"the same origin", open, map[string]string{"Origin": open.srv.URL}, true},
		{"the same origin by fetch metadata", open, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": open.srv.URL}, true},
		{"another origin", open, map[string]string{"Origin": "http://evil.example"}, false},
		{"another port of the same host", open, map[string]string{"Origin": "http://127.0.0.1:1"}, false},
		{"an opaque origin (sandboxed frame, file:)", open, map[string]string{"Origin": "null"}, false},
		{"cross-site by fetch metadata", open, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, false},
		{"same-site: another port of localhost", open, map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:9999"}, false},
		{"another origin with credentials", authed, map[string]string{"Origin": "http://evil.example"}, false},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { resume(t, c) })
			for k, v := range tc.hdr {
				tc.cl.header.Set(k, v)
				defer tc.cl.header.Del(k)
			}
			code, data := tc.cl.do("POST", "/api/queues/default/pause", nil)
			if tc.ok && code != http.StatusOK {
				t.Fatalf("pause with %v: %d %s, want 200", tc.hdr, code, data)
			}
			if !tc.ok && (code != http.StatusForbidden || !bytes.Contains(data, []byte("from another origin"))) {
				t.Fatalf("pause with %v: %d %s, want 403 naming another origin", tc.hdr, code, data)
			}
			paused, err := c.Counts(ctx, "default")
			if err != nil {
				t.Fatal(err)
			}
			if tc.cl == open && paused.Paused != tc.ok {
				t.Fatalf("pause with %v: paused %v", tc.hdr, paused.Paused)
			}
		})
	}
}

// TestCSRFTokenOnlyInTheHeader: the token counts only in the X-CSRF-Token header, as
// the pages send it; in the query string (logs, history, Referer) or a form field (any
// site can post one without a preflight) it is refused.
func TestCSRFTokenOnlyInTheHeader(t *testing.T) {
	cl, c := setup(t, dashboard.Config{})
	cl.token()
	tok := cl.csrf
	cl.csrf = "" // each case sends the token its own way; the cookie stays
	cases := []struct {
		name, query, form, header string
		ok                        bool
	}{
		{"in the header", "", "", tok, true},
		{"in the query string", "?csrf_token=" + tok, "", "", false},
		{"in a form field", "", "csrf_token=" + tok, "", false},
		{"in the query string and a form field", "?csrf_token=" + tok, "csrf_token=" + tok, "", false},
		{"nowhere", "", "", "", false},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { resume(t, c) })
			req, _ := http.NewRequest("POST", cl.srv.URL+"/api/queues/default/pause"+tc.query, strings.NewReader(tc.form))
			if tc.form != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tc.header != "" {
				req.Header.Set("X-CSRF-Token", tc.header)
			}
			code, data := cl.send(req)
			if tc.ok && code != http.StatusOK {
				t.Fatalf("pause: %d %s, want 200", code, data)
			}
			if !tc.ok && (code != http.StatusForbidden || !bytes.Contains(data, []byte("CSRF token"))) {
				t.Fatalf("pause: %d %s, want 403 naming the CSRF token", code, data)
			}
			n, err := c.Counts(ctx, "default")
			if err != nil {
				t.Fatal(err)
			}
			if n.Paused != tc.ok {
				t.Fatalf("paused %v after the pause", n.Paused)
			}
		})
	}
}

// resume resumes the default queue, for the next case.
func resume(t *testing.T, c *queue.Client) {
	if err := c.Resume(context.Background(), "default"); err != nil {
		t.Errorf("resume: %v", err)
	}
}

// TestCSRFCookieSecureOverTLS: served over TLS, the CSRF cookie is Secure (never sent
// in clear text); over plain HTTP (loopback) it cannot be, or no browser would keep it.
func TestCSRFCookieSecureOverTLS(t *testing.T) {
	testutil.CheckLeaks(t)
	c := queue.NewClient(redistest.Client(t), queue.Config{Logger: quiet})
	t.Cleanup(func() { _ = c.Close() })
	h := dashboard.New(c, dashboard.Config{Logger: quiet})
	plain, tls := httptest.NewServer(h), httptest.NewTLSServer(h)
	t.Cleanup(plain.Close)
	t.Cleanup(tls.Close)
	cases := []struct {
		name string
		srv  *httptest.Server
		path string
	}{
		{"http, the token", plain, "/api/csrf"},
		{"http, a page", plain, "/"},
		{"https, the token", tls, "/api/csrf"},
		{"https, a page", tls, "/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.srv.Client().Get(tc.srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var got *http.Cookie
			for _, ck := range resp.Cookies() {
				if ck.Name == "chronoq_csrf" {
					got = ck
				}
			}
			wantSecure := tc.srv == tls
			if got == nil || got.Secure != wantSecure || !got.HttpOnly || got.SameSite != http.SameSiteStrictMode {
				t.Fatalf("%s: cookie %v, want HttpOnly, SameSite=Strict, Secure %v", tc.path, got, wantSecure)
			}
		})
	}
}

// TestPendingOffsetBounded: a pending listing reads every lane's first offset+limit
// jobs, so its offset is bounded: past dashboard.MaxPendingOffset the JSON API answers
// 400 naming the limit and the queue page shows the deepest page with a note. Other
// states read one sorted set by rank and take any offset.
func TestPendingOffsetBounded(t *testing.T) {
	cl, c := setup(t, dashboard.Config{})
	if _, err := c.EnqueueByName(context.Background(), "t", nil); err != nil {
		t.Fatal(err)
	}
	limit := strconv.Itoa(dashboard.MaxPendingOffset)
	past := strconv.Itoa(dashboard.MaxPendingOffset + 1)
	cases := []struct {
		path string
		code int
		in   string // in the body
	}{
		{"/api/queues/default/jobs?offset=" + limit, 200, "[]"},
		{"/api/queues/default/jobs?offset=" + past, 400, "offset " + past + " is past the pending listing's limit of " + limit},
		{"/api/queues/default/jobs?state=pending&offset=1073741824&limit=1", 400, "limit of " + limit},
		{"/api/queues/default/jobs?state=pending&offset=99999999999", 400, "offset 99999999999"},
		{"/api/queues/default/jobs?state=failed&offset=1000000", 200, "[]"},
		{"/api/queues/default/jobs?state=scheduled&offset=1073741824", 200, "[]"},
		{"/queues/default?offset=1000000&norefresh", 200, "Shown from offset " + limit + ": the pending listing goes at most " + limit + " deep."},
		{"/queues/default?state=failed&offset=1000000&norefresh", 200, "No failed job"},
	}
	for _, tc := range cases {
		code, data := cl.do("GET", tc.path, nil)
		if code != tc.code || !bytes.Contains(data, []byte(tc.in)) {
			t.Errorf("%s: %d %.300s, want %d with %q", tc.path, code, data, tc.code, tc.in)
		}
	}
	if _, data := cl.do("GET", "/queues/default?offset=0&norefresh", nil); bytes.Contains(data, []byte(`class="note"`)) {
		t.Errorf("a shallow page shows the depth note")
	}
}
