package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
)

// FuzzDecodedPayload: a job view shows any stored payload (one written by another
// producer, or before the depth limit) without panicking, always as JSON: the
// arguments when they decode into a value JSON can hold, else the reason, the size
// and the first bytes in hex.
func FuzzDecodedPayload(f *testing.F) {
	for _, v := range []any{map[string]any{"to": "ada@example.com", "n": 3}, []any{1, 2.5, "x", nil, true}, "s", []byte{1, 2}} {
		p, err := job.EncodeArgs(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	for _, p := range [][]byte{{}, {0xc1}, {0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0}, {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1}, {0xd6, 0xff, 0, 0, 0, 1},
		{0xd4, 0x05, 0x01}, {0x81, 0x01, 0x02}, {0x81, 0xc0, 0x01}, {0x91, 0x92}, {0x01, 0x02}, bytes.Repeat([]byte{0x91}, 70)} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		v := decoded(p)
		if len(p) == 0 {
			if v != nil {
				t.Fatalf("decoded(empty) = %#v", v)
			}
			return
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("decoded(% x) = %#v, which JSON cannot hold: %v", p, v, err)
		}
		if job.ValidPayload(p) != nil {
			if m, ok := v.(map[string]any); !ok || m["msgpack_hex"] == nil || m["bytes"] != len(p) {
				t.Fatalf("decoded(% x), not a valid payload, = %#v", p, v)
			}
			return
		}
		var want any
		if job.DecodeArgs(p, &want) == nil && !reflect.DeepEqual(v, want) {
			if m, ok := v.(map[string]any); !ok || m["msgpack_hex"] == nil { // not JSON-able: shown undecoded
				t.Fatalf("decoded(% x) = %#v, want %#v", p, v, want)
			}
		}
	})
}

// fuzzDashboard is a dashboard on the package's Redis with a CSRF token, serving
// requests in process.
type fuzzDashboard struct {
	h      *Handler
	c      *queue.Client
	token  string
	cookie *http.Cookie
}

func newFuzzDashboard(f *testing.F) *fuzzDashboard {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := queue.NewClient(redistest.Client(f), queue.Config{Logger: quiet})
	f.Cleanup(func() { _ = c.Close() })
	d := &fuzzDashboard{h: New(c, Config{Logger: quiet}), c: c}
	rec := d.serve("GET", "/api/csrf", nil)
	var v map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || rec.Code != 200 || len(rec.Result().Cookies()) != 1 {
		f.Fatalf("csrf: %d %s", rec.Code, rec.Body)
	}
	d.token, d.cookie = v["csrf_token"], rec.Result().Cookies()[0]
	return d
}

func (d *fuzzDashboard) serve(method, path string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.Host = "127.0.0.1"
	if d.token != "" {
		r.Header.Set("X-CSRF-Token", d.token)
		r.AddCookie(d.cookie)
	}
	rec := httptest.NewRecorder()
	d.h.ServeHTTP(rec, r)
	return rec
}

// FuzzEnqueueBody: POST /api/queues/{queue}/jobs takes any body without panicking and
// answers 201 with the job it enqueued, as the body asked for it, or 400 with the
// reason and nothing enqueued; a bad body is never a server error.
func FuzzEnqueueBody(f *testing.F) {
	for _, s := range []string{
		`{"task":"emails.send","args":{"to":"ada@example.com"},"priority":7}`,
		`{"task":"reports.build","args":[1,2.5,"x",null,true],"retries":2,"timeout":"90s","in":"10m","key":"nightly"}`,
		`{"task":"t","at":"2026-12-24T18:00:00Z"}`, `{"task":"t","at":"2099-01-01T00:00:00Z"}`, `{"task":"t","at":"yesterday"}`,
		`{"task":"t","in":"1s","at":"2026-12-24T18:00:00Z"}`, `{"task":"t","in":"-1h"}`, `{"task":"t","timeout":"90"}`,
		`{"task":""}`, `{"task":"a b"}`, `{"task":"t","priority":12}`, `{"task":"t","retries":-1}`, `{"task":"t","key":"{x}"}`,
		`{"task":"t","args":"` + strings.Repeat("x", 600<<10) + `"}`, `{"task":"t","args":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}`,
		`{"task":"t","colour":"red"}`, `{"task":"t"} {"task":"u"}`, `{"task":"t"}]`, `[]`, `null`, ``, `{`, "\xff",
	} {
		f.Add([]byte(s))
	}
	d := newFuzzDashboard(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := clientstore.Of(d.c).Redis().FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		rec := d.serve("POST", "/api/queues/default/jobs", body)
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("POST %q: %d with a body that is not JSON: %q", body, rec.Code, rec.Body)
		}
		counts, err := d.c.Counts(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Code {
		case http.StatusBadRequest:
			if counts.Pending+counts.Scheduled != 0 {
				t.Fatalf("POST %q: 400 %s, but a job was enqueued", body, rec.Body)
			}
			return
		case http.StatusCreated:
		default:
			t.Fatalf("POST %q: %d %s, want 201 or 400", body, rec.Code, rec.Body)
		}
		var req enqueueRequest
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			t.Fatalf("POST %q: 201, but the body does not decode: %v", body, err)
		}
		var created struct{ ID, Queue string }
		_ = json.Unmarshal(rec.Body.Bytes(), &created)
		j, err := d.c.Job(ctx, "default", created.ID)
		if err != nil || created.Queue != "default" || rec.Header().Get("X-Chronoq-Job") != created.ID {
			t.Fatalf("POST %q: 201 %s, job %v", body, rec.Body, err)
		}
		wantArgs, err := queue.DecodeJSONArgs(req.Args)
		if err != nil {
			t.Fatalf("POST %q: 201, but its args are refused: %v", body, err)
		}
		var got, want any
		p, _ := job.EncodeArgs(wantArgs)
		_ = job.DecodeArgs(p, &want)
		if err := j.Decode(&got); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("POST %q: the job's args are %#v (%v), want %#v", body, got, err, want)
		}
		switch {
		case j.Task != req.Task:
			t.Fatalf("POST %q: task %q", body, j.Task)
		case req.Priority != nil && j.Options.Priority != *req.Priority:
			t.Fatalf("POST %q: priority %d", body, j.Options.Priority)
		case req.Retries != nil && j.Options.MaxRetries != *req.Retries:
			t.Fatalf("POST %q: retries %d", body, j.Options.MaxRetries)
		case req.Timeout != "" && j.Options.Timeout != mustDuration(t, req.Timeout):
			t.Fatalf("POST %q: timeout %v", body, j.Options.Timeout)
		case req.Key != "" && j.Options.Key != req.Key:
			t.Fatalf("POST %q: key %q", body, j.Options.Key)
		}
	})
}

func mustDuration(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("201 with timeout %q: %v", s, err)
	}
	return d
}

// FuzzSetRankingBody: POST /api/queues/{queue}/ranking takes any body without
// panicking and answers 200 with the settings it stored, which pass Validate, or 400
// with the reason and the settings unchanged.
func FuzzSetRankingBody(f *testing.F) {
	for _, s := range []string{`{"mode":"active"}`, `{"mode":"shadow","rule":"fixed","w":8}`, `{"rule":"hrrn"}`, `{"w":0}`, `{"w":1e6}`,
		`{"w":1e7}`, `{"w":-1}`, `{"w":"inf"}`, `{"mode":"weird"}`, `{"alpha":0.5}`, `{}`, `{"w":null}`, `null`, ``, `{"mode":"active"}]`, `[`} {
		f.Add([]byte(s))
	}
	d := newFuzzDashboard(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := clientstore.Of(d.c).Redis().FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		before, err := d.c.Ranking(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		rec := d.serve("POST", "/api/queues/default/ranking", body)
		after, err := d.c.Ranking(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Code {
		case http.StatusOK:
			var answered ranking.Config
			if err := after.Validate(); err != nil {
				t.Fatalf("POST %q: 200, stored %+v: %v", body, after, err)
			}
			var raw map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
				t.Fatalf("POST %q: 200 %s: %v", body, rec.Body, err)
			}
			answered.Mode, answered.Rule = ranking.Mode(strOf(raw["mode"])), ranking.Rule(strOf(raw["rule"]))
			if answered.Mode != after.Mode || answered.Rule != after.Rule {
				t.Fatalf("POST %q: answered %s, stored %+v", body, rec.Body, after)
			}
		case http.StatusBadRequest:
			if after != before {
				t.Fatalf("POST %q: 400 %s, but the settings changed from %+v to %+v", body, rec.Body, before, after)
			}
			var e struct{ Error string }
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("POST %q: 400 without a reason: %s", body, rec.Body)
			}
		default:
			t.Fatalf("POST %q: %d %s, want 200 or 400", body, rec.Code, rec.Body)
		}
	})
}

func strOf(v any) string { s, _ := v.(string); return s }

// FuzzSetLimitBody: POST /api/queues/{queue}/limits takes any body without panicking
// and answers 200 with the limit it stored, which the store reads back as it answered,
// or 400 with the reason and the limits unchanged; a bad body is never a server error.
func FuzzSetLimitBody(f *testing.F) {
	for _, s := range []string{`{"scope":"task","task":"resize","max_running":3}`, `{"scope":"task","task":"resize","rate":"10/m:5"}`,
		`{"scope":"queue","max_running":"20","rate":"100/s"}`, `{"scope":"key","max_running":2}`, `{"scope":"key","clear":true}`,
		`{"scope":"task","task":"resize","max_running":"none"}`, `{"scope":"task","task":"resize","rate":"none","max_running":"none"}`,
		`{"scope":"task","task":"resize","rate":"100/x"}`, `{"scope":"task","task":"resize","max_running":0}`, `{"scope":"task","task":"resize","max_running":-1}`,
		`{"scope":"task","task":"resize","max_running":1e3}`, `{"scope":"task","task":"resize","max_running":"3 "}`, `{"scope":"task","rate":"1/h"}`,
		`{"scope":"queue","rate":"1000001/s"}`, `{"scope":"queue","rate":"NaN/s"}`, `{"scope":"queue","rate":"5/s:0"}`, `{"scope":"tasks"}`,
		`{"scope":"queue","max_running":null}`, `{"scope":"queue","max_running":{}}`, `{"scope":"task","task":"a|b","max_running":1}`,
		`{}`, `null`, ``, `[`, `{"scope":"queue","max_running":1}]`} {
		f.Add([]byte(s))
	}
	d := newFuzzDashboard(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := clientstore.Of(d.c).Redis().FlushDB(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		seed, _ := job.ParseRate("10/s")
		if err := d.c.SetLimit(ctx, "default", job.Limit{Scope: job.ScopeTask, Task: "resize", MaxRunning: 3, Rate: seed}); err != nil {
			t.Fatal(err)
		}
		before, err := d.c.Limits(ctx, "default")
		if err != nil {
			t.Fatal(err)
		}
		rec := d.serve("POST", "/api/queues/default/limits", body)
		after, err := QueueLimits(ctx, d.c, "default")
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Code {
		case http.StatusOK:
			var answer struct{ Limit *LimitView }
			if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
				t.Fatalf("POST %q: 200 %s: %v", body, rec.Body, err)
			}
			if answer.Limit == nil {
				return
			}
			stored, ok := after.find(answer.Limit.Scope, answer.Limit.Task)
			if !ok || stored.MaxRunning != answer.Limit.MaxRunning || stored.Rate != answer.Limit.Rate || stored.Burst != answer.Limit.Burst {
				t.Fatalf("POST %q: answered %s, stored %+v", body, rec.Body, after.Limits)
			}
			if stored.MaxRunning != 0 && job.CheckMaxRunning(stored.MaxRunning) != nil {
				t.Fatalf("POST %q: stored cap %d", body, stored.MaxRunning)
			}
			if _, err := job.ParseRate(stored.Rate); stored.Rate != "" && err != nil {
				t.Fatalf("POST %q: stored rate %q: %v", body, stored.Rate, err)
			}
		case http.StatusBadRequest:
			now, err := d.c.Limits(ctx, "default")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(now, before) {
				t.Fatalf("POST %q: 400 %s, but the limits changed from %+v to %+v", body, rec.Body, before, now)
			}
			var e struct{ Error string }
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("POST %q: 400 without a reason: %s", body, rec.Body)
			}
		default:
			t.Fatalf("POST %q: %d %s, want 200 or 400", body, rec.Code, rec.Body)
		}
	})
}
