package dashboard

import (
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var funcs = template.FuncMap{
	// html/template escapes what this returns; escaping here too would show \u003c
	"json": func(v any) string {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
		return b.String()
	},
	"pct": func(f float64) float64 { return f * 100 },
	// ms shows a duration in ms compactly: "0.4 ms", "35 ms", "2.1 s"
	"ms": func(ms float64) string {
		switch {
		case ms >= 1000:
			return strconv.FormatFloat(ms/1000, 'f', 1, 64) + " s"
		case ms >= 10:
			return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
		}
		return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
	},
	// ago shows how long ago t was compactly: "4.2 s ago", "3 min ago", "5 h ago",
	// "2 d ago". A time a little ahead (another clock: Redis's) is "just now".
	"ago": func(t time.Time) string {
		d := time.Since(t)
		switch {
		case d < 100*time.Millisecond:
			return "just now"
		case d < time.Minute:
			return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s ago"
		case d < time.Hour:
			return strconv.Itoa(int(d/time.Minute)) + " min ago"
		case d < 48*time.Hour:
			return strconv.Itoa(int(d/time.Hour)) + " h ago"
		}
		return strconv.Itoa(int(d/(24*time.Hour))) + " d ago"
	},
}

// page is a template set: the layout plus one page's content.
func page(name string) *template.Template {
	return template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html"))
}

var pages = map[string]*template.Template{}

func init() {
	for _, n := range []string{"overview", "queue", "job", "workers", "beat", "ranking", "fair", "limits"} {
		pages[n] = page(n)
	}
}

func (h *Handler) routePages() {
	static, _ := fs.Sub(staticFS, "static")
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /{$}", h.overviewPage)
	h.mux.HandleFunc("GET /queues/{queue}", h.queuePage)
	h.mux.HandleFunc("GET /queues/{queue}/jobs/{id}", h.jobPage)
	h.mux.HandleFunc("GET /queues/{queue}/ranking", h.rankingPage)
	h.mux.HandleFunc("GET /queues/{queue}/fair", h.fairPage)
	h.mux.HandleFunc("GET /queues/{queue}/limits", h.limitsPage)
	h.mux.HandleFunc("GET /workers", h.workersPage)
	h.mux.HandleFunc("GET /beat", h.beatPage)
}

// render writes a page; html/template escapes every value (a job whose args hold
// <script> shows it as text).
func (h *Handler) render(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'")
	w.Header().Set("X-Frame-Options", "DENY")
	err := pages[name].ExecuteTemplate(w, "layout", map[string]any{
		"Title": title, "Data": data, "CSRF": h.csrfToken(w, r), "ReadOnly": h.cfg.ReadOnly, "Base": h.cfg.BasePath,
	})
	if err != nil {
		h.log.Error("dashboard page", "page", name, "err", err)
	}
}

// csrfToken returns the request's token, setting the cookie when there is none.
func (h *Handler) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 32 {
		return c.Value
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	// Secure over TLS, so the token never travels in clear text; a TLS-terminating proxy
	// in front is not seen here (no setting says to trust X-Forwarded-Proto)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: token, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	return token
}

func (h *Handler) overviewPage(w http.ResponseWriter, r *http.Request) {
	qs, err := h.queueViews(r)
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	h.render(w, r, "overview", "Queues", qs)
}

// pageSize is how many jobs the queue page lists at a time.
const pageSize = 100

func (h *Handler) queuePage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	q := r.PathValue("queue")
	state := job.State(r.URL.Query().Get("state"))
	if state == "" {
		state = job.StatePending
	}
	offset, err := offsetParam(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	v, err := h.queueView(r, q)
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	note := ""
	if state == job.StatePending && offset > MaxPendingOffset {
		offset = MaxPendingOffset
		note = fmt.Sprintf("Shown from offset %d: the pending listing goes at most %d deep.", MaxPendingOffset, MaxPendingOffset)
	}
	js, err := h.c.List(ctx, q, state, offset, pageSize)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	views := make([]JobView, len(js))
	for i, j := range js {
		views[i] = View(j)
	}
	h.render(w, r, "queue", "Queue "+q, map[string]any{"Queue": v, "State": state, "Jobs": views, "Note": note,
		"Page": paging(state, offset, len(js), countOf(v.Counts, state)), "MaxPending": MaxPendingOffset,
		"States": []job.State{job.StatePending, job.StateScheduled, job.StateActive, job.StateFailed, job.StateSucceeded, job.StateCanceled}})
}

// pager is where a page of a listing sits: items (jobs, keys) From to To (1-based) of
// Total, and the offsets of the pages before and after it.
type pager struct {
	Offset, From, To, Total int
	Prev, Next              int  // offsets of the neighbouring pages
	HasPrev, HasNext        bool // whether there is a page before, after
	Capped                  bool // items follow, but the listing goes no deeper
}

// paging places a page of n jobs read at offset in a state's listing of total jobs.
func paging(state job.State, offset, n int, total int64) pager {
	deepest := 0
	if state == job.StatePending {
		deepest = MaxPendingOffset
	}
	return pageOf(offset, n, total, pageSize, deepest)
}

// pageOf places a page of n items read at offset in a listing of total items, size at a
// time, whose pages start no deeper than deepest (0: any depth). The count and the
// listing are read one after the other, so a page shows at least what it read.
func pageOf(offset, n int, total int64, size, deepest int) pager {
	p := pager{Offset: offset, Total: int(total)}
	if n > 0 {
		p.From, p.To, p.Total = offset+1, offset+n, max(p.Total, offset+n)
	}
	if offset > 0 {
		p.HasPrev, p.Prev = true, max(offset-size, 0)
		if n == 0 && p.Total > 0 { // past the end: back to the last page
			p.Prev = min(p.Prev, (p.Total-1)/size*size)
			if deepest > 0 {
				p.Prev = min(p.Prev, deepest)
			}
		}
	}
	if offset+n < p.Total {
		p.Next = offset + size
		if deepest > 0 {
			p.Next = min(p.Next, deepest)
		}
		p.HasNext = p.Next > offset
		p.Capped = !p.HasNext
	}
	return p
}

// countOf is how many jobs counts holds in state.
func countOf(c queue.Counts, state job.State) int64 {
	switch state {
	case job.StatePending:
		return c.Pending
	case job.StateScheduled:
		return c.Scheduled
	case job.StateActive:
		return c.Active
	case job.StateFailed:
		return c.Failed
	case job.StateSucceeded:
		return c.Succeeded
	case job.StateCanceled:
		return c.Canceled
	}
	return 0
}

func (h *Handler) jobPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	j, err := h.c.Job(ctx, r.PathValue("queue"), r.PathValue("id"))
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	h.render(w, r, "job", "Job "+j.ID, View(j))
}

func (h *Handler) rankingPage(w http.ResponseWriter, r *http.Request) {
	q := r.PathValue("queue")
	stats, rep, err := h.rankingReport(r, q)
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	h.render(w, r, "ranking", "Ranking of "+q, map[string]any{"Queue": q, "Config": rep.Config, "Quality": rep.Overall,
		"Tasks": stats, "Modes": []ranking.Mode{ranking.ModeFIFO, ranking.ModeShadow, ranking.ModeActive}})
}

// fairPageSize is how many keys the fair page lists at a time.
const fairPageSize = 50

// fairModes are the fair modes, in the order the fair page offers them, each with what
// it does.
var fairModes = []struct {
	Mode fairshare.Mode
	Does string
}{
	{fairshare.ModeOff, "no fairness between keys; the queue's order is as if no job had a key, and jobs placed by key before the switch still drain"},
	{fairshare.ModeLRU, "the key served least recently goes first, scaled by its weight, counted in jobs"},
	{fairshare.ModeShare, "weighted fair share of worker time, each backlogged key getting worker time in proportion to its weight"},
}

// fairKeyView is a key as the fair page shows it: Name is the key, or
// fairshare.DefaultKeyName for the default key (jobs without a fair key), which is ""
// where it is stored and posted.
type fairKeyView struct {
	fairshare.KeyInfo
	Name    string
	Default bool
}

// fairPage is a queue's fair mode, with a switch, and its keys with pending jobs, most
// pending first, fairPageSize at a time, each with a form to set its weight.
func (h *Handler) fairPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	q := r.PathValue("queue")
	offset, err := offsetParam(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	mode, err := h.c.FairMode(ctx, q)
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	keys, total, err := h.c.FairKeys(ctx, q, offset, fairPageSize)
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	views := make([]fairKeyView, len(keys))
	for i, k := range keys {
		views[i] = fairKeyView{KeyInfo: k, Name: k.Key}
		if k.Key == "" {
			views[i].Name, views[i].Default = fairshare.DefaultKeyName, true
		}
	}
	does := ""
	for _, m := range fairModes {
		if m.Mode == mode {
			does = m.Does
		}
	}
	h.render(w, r, "fair", "Fair share of "+q, map[string]any{"Queue": q, "Mode": mode, "Does": does, "Modes": fairModes,
		"Keys": views, "Page": pageOf(offset, len(keys), total, fairPageSize, 0), "PageSize": fairPageSize,
		"DefaultKey": fairshare.DefaultKeyName, "MinWeight": fairshare.MinWeight, "MaxWeight": fairshare.MaxWeight})
}

func (h *Handler) workersPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	ws, err := h.c.Workers(ctx)
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	if ws == nil {
		ws = []queue.WorkerInfo{}
	}
	h.render(w, r, "workers", "Workers", ws)
}

func (h *Handler) beatPage(w http.ResponseWriter, r *http.Request) {
	var st any = []any{}
	if h.cfg.Beat != nil {
		ctx, cancel := ctxOf(r)
		defer cancel()
		s, err := h.cfg.Beat.List(ctx)
		if err != nil {
			writeErr(w, status(err), err)
			return
		}
		st = s
	}
	h.render(w, r, "beat", "Beat", st)
}
