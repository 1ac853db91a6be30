package dashboard

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures the handler.
type Config struct {
	// User and Password turn on basic auth; Token turns on bearer auth. With neither,
	// the handler is open: mount it behind your own auth, or bind to loopback. An open
	// handler serves only requests whose Host is loopback (localhost, 127.0.0.1, [::1],
	// any port) or in AllowedHosts, so a page that rebinds its name to 127.0.0.1 gets
	// nothing.
	User, Password, Token string
	// AllowedHosts are host names (or IP addresses) an open handler serves besides
	// loopback, any port: the name a proxy in front forwards, e.g. "chronoq.internal".
	// A port in an entry is ignored. With credentials set, every Host is served.
	AllowedHosts []string
	// ReadOnly refuses every action.
	ReadOnly bool
	// Beat, when set, shows and steers the beat's entries.
	Beat *beat.Beat
	// BasePath is where the handler is mounted when not at the root, e.g. "/chronoq"
	// with mux.Handle("/chronoq/", http.StripPrefix("/chronoq", h)): the pages' links
	// start with it.
	BasePath string
	// Metrics, when set, is served on /metrics beside the Redis-wide gauges: in a
	// process that also runs a worker, pass the registry its prommetrics observer
	// (worker.Config.Observer) registered on, so its histograms show too.
	Metrics prometheus.Gatherer
	Logger  *slog.Logger
}

// Handler is the dashboard.
type Handler struct {
	c       *queue.Client
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	allowed []string // AllowedHosts as hostName reads a Host
	origin  *http.CrossOriginProtection
}

// New returns the dashboard for c.
func New(c *queue.Client, cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.BasePath = strings.TrimRight(cfg.BasePath, "/")
	if cfg.BasePath != "" && !strings.HasPrefix(cfg.BasePath, "/") {
		cfg.BasePath = "/" + cfg.BasePath
	}
	h := &Handler{c: c, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), origin: http.NewCrossOriginProtection()}
	for _, a := range cfg.AllowedHosts {
		if n := hostName(a); n != "" {
			h.allowed = append(h.allowed, n)
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(c))
	var g prometheus.Gatherer = reg
	if cfg.Metrics != nil {
		g = prometheus.Gatherers{reg, cfg.Metrics}
	}
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	h.mux.HandleFunc("GET /api/csrf", h.csrf)
	h.mux.HandleFunc("GET /api/queues", h.queues)
	h.mux.HandleFunc("GET /api/queues/{queue}", h.queueInfo)
	h.mux.HandleFunc("GET /api/queues/{queue}/jobs", h.jobs)
	h.mux.HandleFunc("GET /api/queues/{queue}/jobs/{id}", h.job)
	h.mux.HandleFunc("GET /api/queues/{queue}/ranking", h.ranking)
	h.mux.HandleFunc("GET /api/queues/{queue}/fair", h.fair)
	h.mux.HandleFunc("GET /api/queues/{queue}/limits", h.limits)
	h.mux.HandleFunc("GET /api/workers", h.workers)
	h.mux.HandleFunc("GET /api/beat", h.beatList)
	h.mux.HandleFunc("POST /api/queues/{queue}/jobs", h.action("enqueue", h.enqueue))
	h.mux.HandleFunc("POST /api/queues/{queue}/jobs/{id}/cancel", h.action("cancel", h.cancel))
	h.mux.HandleFunc("POST /api/queues/{queue}/jobs/{id}/delete", h.action("delete", h.delete))
	h.mux.HandleFunc("POST /api/queues/{queue}/jobs/{id}/requeue", h.action("requeue", h.requeue))
	h.mux.HandleFunc("POST /api/queues/{queue}/requeue", h.action("requeue all", h.requeue))
	h.mux.HandleFunc("POST /api/queues/{queue}/purge", h.action("purge", h.purge))
	h.mux.HandleFunc("POST /api/queues/{queue}/pause", h.action("pause", h.pause))
	h.mux.HandleFunc("POST /api/queues/{queue}/resume", h.action("resume", h.resume))
	h.mux.HandleFunc("POST /api/queues/{queue}/ranking", h.action("ranking mode", h.setRanking))
	h.mux.HandleFunc("POST /api/queues/{queue}/fair", h.action("fair share", h.setFair))
	h.mux.HandleFunc("POST /api/queues/{queue}/limits", h.action("limit", h.setLimit))
	h.mux.HandleFunc("POST /api/beat/{name}/enable", h.action("beat enable", h.beatSwitch(true)))
	h.mux.HandleFunc("POST /api/beat/{name}/disable", h.action("beat disable", h.beatSwitch(false)))
	h.routePages()
	return h
}

// ServeHTTP checks the Host, credentials and, for a state change, that it comes from
// the dashboard's own origin; then routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.hostAllowed(r.Host) {
		writeErr(w, http.StatusForbidden, fmt.Errorf("host %q is not served by a dashboard without credentials: "+
			"open it at localhost, 127.0.0.1 or [::1], allow the host (Config.AllowedHosts, --allowed-host) or set credentials", r.Host))
		return
	}
	if !h.authorized(r) {
		if h.cfg.Token == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="chronoq"`)
		}
		writeErr(w, http.StatusUnauthorized, errors.New("credentials required"))
		return
	}
	// Sec-Fetch-Site, or else Origin against Host: another site's page (another port
	// of localhost included) must not act, whatever token it holds
	if err := h.origin.Check(r); err != nil {
		writeErr(w, http.StatusForbidden, fmt.Errorf("refused a %s from another origin (%v): act from the dashboard's own pages, or without a browser", r.Method, err))
		return
	}
	h.mux.ServeHTTP(w, r)
}

// hostAllowed guards an open handler against DNS rebinding: a page whose name now
// resolves to 127.0.0.1 still sends its own name as Host. With credentials any Host
// goes, since such a page has none.
func (h *Handler) hostAllowed(host string) bool {
	if h.cfg.Token != "" || h.cfg.User != "" {
		return true
	}
	name := hostName(host)
	if name == "localhost" {
		return true
	}
	if ip := net.ParseIP(name); ip != nil && ip.IsLoopback() {
		return true // an IP literal names no page another site could serve
	}
	return name != "" && slices.Contains(h.allowed, name)
}

// hostName is a Host without its port and brackets, lowercased: "[::1]:8080" is "::1".
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
}

func (h *Handler) authorized(r *http.Request) bool {
	if h.cfg.Token == "" && h.cfg.User == "" {
		return true
	}
	if h.cfg.Token != "" {
		if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok &&
			subtle.ConstantTimeCompare([]byte(t), []byte(h.cfg.Token)) == 1 {
			return true
		}
	}
	if h.cfg.User != "" {
		u, p, ok := r.BasicAuth()
		return ok && subtle.ConstantTimeCompare([]byte(u), []byte(h.cfg.User)) == 1 &&
			subtle.ConstantTimeCompare([]byte(p), []byte(h.cfg.Password)) == 1
	}
	return false
}

const csrfCookie = "chronoq_csrf"

// csrf hands out a token (and its cookie) that actions must send back.
func (h *Handler) csrf(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]string{"csrf_token": h.csrfToken(w, r), "header": "X-CSRF-Token"})
}

// action wraps a state change: refused in read-only mode, refused without a matching
// CSRF token, logged when done.
func (h *Handler) action(name string, fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.cfg.ReadOnly {
			writeErr(w, http.StatusForbidden, errors.New("the dashboard is read-only"))
			return
		}
		// the header only, as the pages' script sends it: a token in the URL leaks into
		// logs and history, and a form field can be posted by any site without a preflight
		c, err := r.Cookie(csrfCookie)
		tok := r.Header.Get("X-CSRF-Token")
		if err != nil || tok == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(tok)) != 1 {
			writeErr(w, http.StatusForbidden, errors.New("missing or wrong CSRF token (GET /api/csrf, send it back in the X-CSRF-Token header, not in the URL or a form)"))
			return
		}
		if err := fn(w, r); err != nil {
			writeErr(w, status(err), err)
			return
		}
		attrs := []any{"action", name, "queue", r.PathValue("queue")}
		if id := r.PathValue("id"); id != "" {
			attrs = append(attrs, "id", id)
		}
		if id := w.Header().Get("X-Chronoq-Job"); id != "" { // an enqueue names the job it made
			attrs = append(attrs, "id", id)
		}
		h.log.Info("dashboard action", append(attrs, "from", r.RemoteAddr)...)
	}
}

func status(err error) int {
	switch {
	case errors.Is(err, job.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, job.ErrInvalidOption), errors.Is(err, job.ErrBadPayload), errors.Is(err, ranking.ErrInvalidConfig),
		errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, queue.ErrJobActive), errors.Is(err, queue.ErrJobEnded):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

var errBadRequest = errors.New("bad request")

func writeJSON(w http.ResponseWriter, v any) { writeJSONCode(w, http.StatusOK, v) }

// writeJSONCode answers code with v as JSON. v is encoded before anything is sent: a
// value JSON cannot hold (NaN, an infinity) answers 500 naming it, never code with a
// body cut where the encoder stopped.
func writeJSONCode(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(true) // <script> in a job's args stays text wherever it is shown
	if err := enc.Encode(v); err != nil {
		writeErr(w, http.StatusInternalServerError, fmt.Errorf("the answer cannot be written as JSON: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func writeErr(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

func ctxOf(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 10*time.Second)
}

// maxOffset is the largest offset a listing takes (the pending listing takes at most
// MaxPendingOffset).
const maxOffset = 1 << 30

// offsetParam reads a listing's offset parameter: 0 when absent; anything but a whole
// number from 0 to maxOffset is a bad request that names the parameter.
func offsetParam(r *http.Request) (int, error) {
	raw := r.URL.Query().Get("offset")
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 || n > maxOffset {
		return 0, fmtErr("offset %s: want a whole number from 0 to %d", raw, maxOffset)
	}
	return n, nil
}

func intParam(r *http.Request, name string, def, max int) int {
	n, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || n < 0 {
		return def
	}
	return min(n, max)
}

func must200(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	writeJSON(w, v)
}

func fmtErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadRequest}, a...)...)
}
