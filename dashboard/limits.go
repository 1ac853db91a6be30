package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

// Fleet-wide limits (docs/limits.md): the view that GET /api/queues/{q}/limits, the
// limits page and `chronoq-worker limits show --json` share, and the change that POST
// /api/queues/{q}/limits and `limits set|clear` make, so the three never disagree.

// LimitView is one of a queue's limits with its use now.
type LimitView struct {
	Scope      job.LimitScope `json:"scope"`
	Task       string         `json:"task,omitempty"`
	MaxRunning int            `json:"max_running,omitempty"` // 0: no cap
	// Running is how many jobs the cap counts running (0 without a cap; for the
	// per-key setting, see LimitsView.Keys).
	Running   int     `json:"running"`
	Rate      string  `json:"rate,omitempty"` // as job.ParseRate reads it: "100/s", "10/m:5"
	PerSecond float64 `json:"rate_per_second,omitempty"`
	Burst     int     `json:"burst,omitempty"`
	// Tokens is what the bucket holds now (at most Burst), with a rate; the per-key
	// setting has none of its own (each key's is in LimitsView.Keys).
	Tokens   *float64 `json:"tokens,omitempty"`
	Declared bool     `json:"declared"` // by the task's declaration, not set by an operator
}

// KeyLimitView is one fair key's use of the per-key limit.
type KeyLimitView struct {
	Key     string   `json:"key"` // "" is the default key (jobs without one), as in the fair views
	Running int      `json:"running"`
	Tokens  *float64 `json:"tokens,omitempty"` // with a per-key rate
}

// LimitsView is a queue's limits: the queue's, each task's by name, the per-key
// setting, and the fair keys with jobs running under it (Keys, KeysTotal of them from
// Offset).
type LimitsView struct {
	Queue     string         `json:"queue"`
	FairMode  fairshare.Mode `json:"fair_mode"` // a per-key limit acts only in lru or share
	Limits    []LimitView    `json:"limits"`
	Keys      []KeyLimitView `json:"keys"`
	KeysTotal int            `json:"keys_total"`
	Offset    int            `json:"offset"`
}

// KeyLimit is the per-key setting, if one is set.
func (v LimitsView) KeyLimit() (LimitView, bool) {
	for _, l := range v.Limits {
		if l.Scope == job.ScopeKey {
			return l, true
		}
	}
	return LimitView{}, false
}

// KeyLimitIdle reports whether a per-key limit is set but does not act: the queue's
// fair mode is off, so its jobs are not placed by key.
func (v LimitsView) KeyLimitIdle() bool {
	_, ok := v.KeyLimit()
	return ok && v.FairMode == fairshare.ModeOff
}

// QueueLimits reads queue's limits with their use, every key included.
func QueueLimits(ctx context.Context, c *queue.Client, q string) (LimitsView, error) {
	v := LimitsView{Queue: q, Limits: []LimitView{}, Keys: []KeyLimitView{}}
	uses, err := c.Limits(ctx, q)
	if err != nil {
		return v, err
	}
	if v.FairMode, err = c.FairMode(ctx, q); err != nil {
		return v, err
	}
	perKey := false
	for _, u := range uses {
		tokens := func() *float64 {
			if u.Rate.IsZero() {
				return nil
			}
			t := u.Tokens
			return &t
		}
		// the per-key setting comes first, then its keys (the default key's, named
		// "(default)" by the client, is "" here as in the fair views)
		// too, so only the order tells them apart
		if u.Scope == job.ScopeKey && perKey {
			key := u.Key
			if key == fairshare.DefaultKeyName {
				key = ""
			}
			v.Keys = append(v.Keys, KeyLimitView{Key: key, Running: u.Running, Tokens: tokens()})
			continue
		}
		lv := LimitView{Scope: u.Scope, Task: u.Task, MaxRunning: u.MaxRunning, Declared: u.Declared}
		if u.MaxRunning > 0 {
			lv.Running = u.Running
		}
		if !u.Rate.IsZero() {
			lv.Rate, lv.PerSecond, lv.Burst = u.Rate.String(), u.Rate.PerSecond(), u.Rate.Burst
		}
		if u.Scope == job.ScopeKey {
			perKey = true
		} else {
			lv.Tokens = tokens()
		}
		v.Limits = append(v.Limits, lv)
	}
	v.KeysTotal = len(v.Keys)
	return v, nil
}

// page keeps the keys from offset, at most n of them.
func (v LimitsView) page(offset, n int) LimitsView {
	v.Offset = offset
	v.Keys = v.Keys[min(offset, len(v.Keys)):min(offset+n, len(v.Keys))]
	return v
}

// LimitChange is a change to one of a queue's limits, in the words of `chronoq-worker
// limits set|clear` and POST /api/queues/{q}/limits. MaxRunning and Rate are text as
// given: a cap (1 to job.MaxRunningLimit) and a rate spec ("100/s", "10/m:5"), "none"
// to remove that part, nil to keep what is set. Clear removes the whole limit.
type LimitChange struct {
	Scope      string // task, key or queue
	Task       string // with scope task
	MaxRunning *string
	Rate       *string
	Clear      bool
}

// none removes a part of a limit.
const none = "none"

// parsed is a checked change: the group, and the parts it sets (nil: keep).
type parsed struct {
	limit      job.Limit // the scope and task
	maxRunning *int      // 0: no cap
	rate       *job.Rate // zero: no rate
}

// Check reports the first bad value of the change, naming it; a change that passes
// is refused by nothing but Redis.
func (ch LimitChange) Check() error { _, err := ch.parse(); return err }

func (ch LimitChange) parse() (parsed, error) {
	var p parsed
	bad := func(what, value, reason string) (parsed, error) {
		return parsed{}, &job.LimitError{What: what, Value: value, Reason: reason}
	}
	switch s := job.LimitScope(ch.Scope); s {
	case job.ScopeTask:
		if ch.Task == "" {
			return bad("limit", "scope task", "needs the task's name (task NAME)")
		}
		if err := job.ValidateTaskName(ch.Task); err != nil {
			return parsed{}, err
		}
		p.limit = job.Limit{Scope: s, Task: ch.Task}
	case job.ScopeKey, job.ScopeQueue:
		if ch.Task != "" {
			return bad("limit", "scope "+ch.Scope, fmt.Sprintf("names no task (got %q): a task's limit is task NAME", ch.Task))
		}
		p.limit = job.Limit{Scope: s}
	default:
		return bad("limit scope", strconv.Quote(ch.Scope), "want task NAME, key or queue")
	}
	switch {
	case ch.Clear && (ch.MaxRunning != nil || ch.Rate != nil):
		return bad("limit", "clear", "takes no cap or rate: clear removes the whole limit")
	case ch.Clear:
		zero, noRate := 0, job.Rate{}
		p.maxRunning, p.rate = &zero, &noRate
		return p, nil
	case ch.MaxRunning == nil && ch.Rate == nil:
		return bad("limit", "change", "sets nothing: give a cap (max running) or a rate, or clear the limit")
	}
	if ch.MaxRunning != nil {
		text := strings.TrimSpace(*ch.MaxRunning)
		n := 0
		if text != none {
			v, err := strconv.Atoi(text)
			if err != nil || job.CheckMaxRunning(v) != nil {
				return bad("MaxRunning", strconv.Quote(*ch.MaxRunning),
					fmt.Sprintf("want a whole number from 1 to %d, or %q to remove the cap", job.MaxRunningLimit, none))
			}
			n = v
		}
		p.maxRunning = &n
	}
	if ch.Rate != nil {
		var r job.Rate
		if strings.TrimSpace(*ch.Rate) != none {
			var err error
			if r, err = job.ParseRate(*ch.Rate); err != nil {
				return parsed{}, err
			}
		}
		p.rate = &r
	}
	return p, nil
}

// Apply makes the change on queue q and returns the limit now set (neither a cap nor
// a rate: none). A part the change does not name keeps its setting, a declared one
// included, which from then on is the operator's: declarations leave it alone until
// it is cleared. The current setting is read, then replaced: two operators changing
// different parts of one limit at the same moment may lose one change.
func (ch LimitChange) Apply(ctx context.Context, c *queue.Client, q string) (job.Limit, error) {
	p, err := ch.parse()
	if err != nil {
		return job.Limit{}, err
	}
	l := p.limit
	if p.maxRunning == nil || p.rate == nil {
		cur, err := QueueLimits(ctx, c, q)
		if err != nil {
			return job.Limit{}, err
		}
		if v, ok := cur.find(l.Scope, l.Task); ok {
			l.MaxRunning = v.MaxRunning
			if v.Rate != "" {
				if l.Rate, err = job.ParseRate(v.Rate); err != nil {
					return job.Limit{}, err
				}
			}
		}
	}
	if p.maxRunning != nil {
		l.MaxRunning = *p.maxRunning
	}
	if p.rate != nil {
		l.Rate = *p.rate
	}
	return l, c.SetLimit(ctx, q, l)
}

// find is the limit of scope (and task), if set.
func (v LimitsView) find(scope job.LimitScope, task string) (LimitView, bool) {
	for _, l := range v.Limits {
		if l.Scope == scope && l.Task == task {
			return l, true
		}
	}
	return LimitView{}, false
}

// limits is a queue's limits, the per-key rows paged by offset and limit.
func (h *Handler) limits(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	offset, err := offsetParam(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	v, err := QueueLimits(ctx, h.c, r.PathValue("queue"))
	must200(w, v.page(offset, max(intParam(r, "limit", 50, 500), 1)), err)
}

// setLimit takes {"scope": "task", "task": "resize", "max_running": 3, "rate": "10/s"}
// (max_running a number or "none", rate a spec or "none"; an absent or null part
// keeps its setting), or {"scope": "key", "clear": true}, and answers the limit now set
// with its use (null when none is).
func (h *Handler) setLimit(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Scope      string          `json:"scope"`
		Task       string          `json:"task"`
		MaxRunning json.RawMessage `json:"max_running"`
		Rate       *string         `json:"rate"`
		Clear      bool            `json:"clear"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmtErr("body: %v", err)
	}
	ch := LimitChange{Scope: req.Scope, Task: req.Task, Rate: req.Rate, Clear: req.Clear}
	if raw := bytes.TrimSpace(req.MaxRunning); len(raw) > 0 && string(raw) != "null" {
		// a number as written, or a string ("none", or a number a form sent as text)
		text := string(raw)
		var s string
		if json.Unmarshal(raw, &s) == nil {
			text = s
		}
		ch.MaxRunning = &text
	}
	if err := ch.Check(); err != nil {
		return err
	}
	ctx, cancel := ctxOf(r)
	defer cancel()
	q := r.PathValue("queue")
	l, err := ch.Apply(ctx, h.c, q)
	if err != nil {
		return err
	}
	v, err := QueueLimits(ctx, h.c, q)
	if err != nil {
		return err
	}
	var now *LimitView
	if lv, ok := v.find(l.Scope, l.Task); ok {
		now = &lv
	}
	writeJSON(w, map[string]any{"ok": true, "limit": now})
	return nil
}
