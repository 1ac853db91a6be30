package dashboard

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

// enqueueRequest is the body of POST /api/queues/{queue}/jobs.
type enqueueRequest struct {
	Task     string          `json:"task"`
	Args     json.RawMessage `json:"args"`
	Priority *int            `json:"priority"`
	Retries  *int            `json:"retries"`
	In       string          `json:"in"` // a Go duration, e.g. "90s"
	At       *time.Time      `json:"at"` // RFC 3339
	Key      string          `json:"key"`
	FairKey  string          `json:"fair_key"`
	Timeout  string          `json:"timeout"`
}

func (h *Handler) enqueue(w http.ResponseWriter, r *http.Request) error {
	var req enqueueRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmtErr("body: %v", err)
	}
	opts := []job.Option{job.Queue(r.PathValue("queue"))}
	if req.Priority != nil {
		opts = append(opts, job.Priority(*req.Priority))
	}
	if req.Retries != nil {
		opts = append(opts, job.MaxRetries(*req.Retries))
	}
	for _, d := range []struct {
		text string
		opt  func(time.Duration) job.Option
		name string
	}{{req.In, job.In, "in"}, {req.Timeout, job.Timeout, "timeout"}} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil {
			return fmtErr("%s %q is not a duration (e.g. 90s, 2h)", d.name, d.text)
		}
		opts = append(opts, d.opt(v))
	}
	if req.At != nil {
		opts = append(opts, job.At(*req.At))
	}
	if req.Key != "" {
		opts = append(opts, job.Key(req.Key))
	}
	if req.FairKey != "" {
		opts = append(opts, job.FairKey(req.FairKey))
	}
	ctx, cancel := ctxOf(r)
	defer cancel()
	hd, err := h.c.EnqueueJSON(ctx, req.Task, req.Args, opts...)
	if err != nil {
		return err
	}
	w.Header().Set("X-Chronoq-Job", hd.ID)
	writeJSONCode(w, http.StatusCreated, map[string]any{"id": hd.ID, "queue": hd.Queue, "existing": hd.Existing})
	return nil
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := ctxOf(r)
	defer cancel()
	// a running job is asked to stop (its worker cancels its context)
	running, err := h.c.StopJob(ctx, r.PathValue("queue"), r.PathValue("id"))
	if err != nil {
		return err
	}
	if running {
		writeJSON(w, map[string]string{"stopping": r.PathValue("id")})
		return nil
	}
	writeJSON(w, map[string]string{"canceled": r.PathValue("id")})
	return nil
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := ctxOf(r)
	defer cancel()
	if err := h.c.Delete(ctx, r.PathValue("queue"), r.PathValue("id")); err != nil {
		return err
	}
	writeJSON(w, map[string]string{"deleted": r.PathValue("id")})
	return nil
}

func (h *Handler) requeue(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := ctxOf(r)
	defer cancel()
	var ids []string
	if id := r.PathValue("id"); id != "" {
		ids = []string{id}
	}
	n, err := h.c.Requeue(ctx, r.PathValue("queue"), ids...)
	if err != nil {
		return err
	}
	writeJSON(w, map[string]int{"requeued": n})
	return nil
}

func (h *Handler) purge(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := ctxOf(r)
	defer cancel()
	n, err := h.c.Purge(ctx, r.PathValue("queue"), job.State(r.URL.Query().Get("state")), nil)
	if err != nil {
		return fmtErr("%v", err)
	}
	writeJSON(w, map[string]int{"purged": n})
	return nil
}

func (h *Handler) pause(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := ctxOf(r)
	defer cancel()
	if err := h.c.Pause(ctx, r.PathValue("queue")); err != nil {
		return err
	}
	writeJSON(w, map[string]bool{"paused": true})
	return nil
}

func (h *Handler) resume(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := ctxOf(r)
	defer cancel()
	if err := h.c.Resume(ctx, r.PathValue("queue")); err != nil {
		return err
	}
	writeJSON(w, map[string]bool{"paused": false})
	return nil
}

// setFair switches a queue's fair mode and sets one key's weight: {"mode": "share"},
// {"key": "acme", "weight": 2}, or both; everything is checked before anything is set.
func (h *Handler) setFair(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Mode   *fairshare.Mode `json:"mode"`
		Key    *string         `json:"key"`
		Weight *float64        `json:"weight"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmtErr("body: %v", err)
	}
	if req.Mode != nil {
		if _, err := fairshare.ParseMode(string(*req.Mode)); err != nil {
			return fmtErr("%v", err)
		}
	}
	if (req.Key == nil) != (req.Weight == nil) {
		return fmtErr("a weight needs its key, and a key its weight")
	}
	if req.Weight != nil {
		if err := fairshare.CheckWeight(*req.Weight); err != nil {
			return fmtErr("fair key %q: %v", *req.Key, err)
		}
	}
	ctx, cancel := ctxOf(r)
	defer cancel()
	q := r.PathValue("queue")
	if req.Weight != nil {
		if err := h.c.SetFairWeight(ctx, q, *req.Key, *req.Weight); err != nil {
			return err
		}
	}
	if req.Mode != nil {
		if err := h.c.SetFairMode(ctx, q, *req.Mode); err != nil {
			return err
		}
	}
	writeJSON(w, map[string]any{"ok": true})
	return nil
}

// setRanking takes {"mode": "active", "rule": "fixed", "w": 8}; absent fields stay.
func (h *Handler) setRanking(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Mode *ranking.Mode `json:"mode"`
		Rule *ranking.Rule `json:"rule"`
		W    *float64      `json:"w"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmtErr("body: %v", err)
	}
	ctx, cancel := ctxOf(r)
	defer cancel()
	q := r.PathValue("queue")
	cfg, err := h.c.Ranking(ctx, q)
	if err != nil {
		return err
	}
	if req.Mode != nil {
		cfg.Mode = *req.Mode
	}
	if req.Rule != nil {
		cfg.Rule = *req.Rule
	}
	if req.W != nil {
		cfg.W = *req.W
	}
	if err := h.c.SetRanking(ctx, q, cfg); err != nil {
		return err
	}
	writeJSON(w, cfg)
	return nil
}

func (h *Handler) beatSwitch(on bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if h.cfg.Beat == nil {
			return fmtErr("no beat is attached to this dashboard")
		}
		ctx, cancel := ctxOf(r)
		defer cancel()
		var err error
		if on {
			err = h.cfg.Beat.Enable(ctx, r.PathValue("name"))
		} else {
			err = h.cfg.Beat.Disable(ctx, r.PathValue("name"))
		}
		if err != nil {
			return err
		}
		writeJSON(w, map[string]bool{"enabled": on})
		return nil
	}
}
