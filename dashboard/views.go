package dashboard

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

// JobView is a job as the JSON API (and the CLI's job --json) shows it: arguments and
// result decoded from msgpack.
type JobView struct {
	ID         string     `json:"id"`
	Task       string     `json:"task"`
	Queue      string     `json:"queue"`
	Priority   int        `json:"priority"`
	State      job.State  `json:"state"`
	Attempt    int        `json:"attempt"`
	MaxRetries int        `json:"max_retries"`
	Key        string     `json:"key,omitempty"`
	FairKey    string     `json:"fair_key,omitempty"`
	Args       any        `json:"args"`
	Result     any        `json:"result,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
	Stack      string     `json:"stack,omitempty"`
	Worker     string     `json:"worker,omitempty"`
	EnqueuedAt time.Time  `json:"enqueued_at"`
	DueAt      *time.Time `json:"due_at,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// View is j as the JSON API shows it.
func View(j *job.Job) JobView {
	v := JobView{ID: j.ID, Task: j.Task, Queue: j.Options.Queue, Priority: j.Options.Priority, State: j.State,
		Attempt: j.Attempt, MaxRetries: j.Options.MaxRetries, Key: j.Options.Key, FairKey: j.Options.FairKey, LastError: j.LastError,
		Stack: j.Stack, Worker: j.Worker, EnqueuedAt: j.EnqueuedAt, Args: decoded(j.Payload), Result: decoded(j.Result)}
	for _, p := range []struct {
		t   time.Time
		dst **time.Time
	}{{j.DueAt, &v.DueAt}, {j.StartedAt, &v.StartedAt}, {j.FinishedAt, &v.FinishedAt}} {
		if !p.t.IsZero() {
			t := p.t
			*p.dst = &t
		}
	}
	return v
}

// decoded turns msgpack into a JSON-able value. One that is not (not msgpack, nested
// deeper than job.MaxPayloadDepth, holding a value JSON cannot) shows as the reason, its
// size and the hex of its first bytes. The depth is checked before decoding: a payload
// stored before the limit, half a megabyte of nested arrays, took seconds and a
// gigabyte to decode.
func decoded(p []byte) any {
	if len(p) == 0 {
		return nil
	}
	if err := job.ValidPayload(p); err != nil {
		return undecoded(p, err)
	}
	var v any
	if err := job.DecodeArgs(p, &v); err != nil {
		return undecoded(p, err)
	}
	if _, err := json.Marshal(v); err != nil {
		return undecoded(p, err)
	}
	return v
}

// undecodedHex is how many bytes of an undecodable payload a view shows.
const undecodedHex = 1024

func undecoded(p []byte, err error) map[string]any {
	return map[string]any{"error": err.Error(), "bytes": len(p), "msgpack_hex": hex.EncodeToString(p[:min(len(p), undecodedHex)])}
}

type queueView struct {
	Name    string         `json:"name"`
	Counts  queue.Counts   `json:"counts"`
	Ranking ranking.Config `json:"ranking"`
	Recent  recentView     `json:"recent"`
}

// recentMinutes is the overview's window: rates over the last 5 minutes, and a line of
// the last 15.
const recentMinutes, sparkMinutes = 5, 15

// recentView is a queue's recent activity: throughput, failure rate and the wait from
// due to start, from the activity ring every worker's outcomes feed.
type recentView struct {
	Minutes        int          `json:"minutes"`
	Succeeded      int64        `json:"succeeded"`
	Failed         int64        `json:"failed"`
	Retried        int64        `json:"retried"`
	PerMinute      float64      `json:"succeeded_per_minute"`
	FailureRate    float64      `json:"failure_rate"` // failed attempts (retried or not) / attempts
	WaitMeanMs     float64      `json:"wait_mean_ms"`
	WaitMaxMs      float64      `json:"wait_max_ms"`
	ByMinute       []minuteView `json:"by_minute"` // the last 15 minutes, oldest first
	SucceededSpark string       `json:"-"`
	Attempts       int64        `json:"-"` // in the window: no rate without any
	Waits          int64        `json:"-"` // waits measured in the window
}

type minuteView struct {
	Start     time.Time `json:"start"`
	Succeeded int64     `json:"succeeded"`
	Failed    int64     `json:"failed"`
	Retried   int64     `json:"retried"`
	WaitMean  float64   `json:"wait_mean_ms"`
}

func recent(mins []queue.Minute) recentView {
	v := recentView{Minutes: recentMinutes}
	var peak int64
	for _, m := range mins {
		mv := minuteView{Start: m.Start, Succeeded: m.Succeeded, Failed: m.Failed, Retried: m.Retried}
		if m.WaitCount > 0 {
			mv.WaitMean = float64(m.WaitSum.Microseconds()) / 1000 / float64(m.WaitCount)
		}
		v.ByMinute = append(v.ByMinute, mv)
		peak = max(peak, m.Succeeded)
	}
	sum := queue.Summarize(mins[max(len(mins)-recentMinutes, 0):], time.Now())
	v.Succeeded, v.Failed, v.Retried = sum.Succeeded, sum.Failed, sum.Retried
	v.Attempts = sum.Succeeded + sum.Failed + sum.Retried
	for _, m := range mins[max(len(mins)-recentMinutes, 0):] {
		v.Waits += m.WaitCount
	}
	v.PerMinute, v.FailureRate = sum.PerMinute, sum.FailureRate
	v.WaitMeanMs = float64(sum.WaitMean.Microseconds()) / 1000
	v.WaitMaxMs = float64(sum.WaitMax.Microseconds()) / 1000
	v.SucceededSpark = spark(v.ByMinute, peak)
	return v
}

// spark draws succeeded jobs per minute as block characters: text, so the strict
// Content-Security-Policy needs no inline styles.
func spark(ms []minuteView, peak int64) string {
	const bars = "▁▂▃▄▅▆▇█"
	levels := []rune(bars)
	out := make([]rune, len(ms))
	for i, m := range ms {
		l := 0
		if peak > 0 && m.Succeeded > 0 {
			l = 1 + int(float64(m.Succeeded)/float64(peak)*float64(len(levels)-2)+0.5)
		}
		out[i] = levels[min(l, len(levels)-1)]
	}
	return string(out)
}

func (h *Handler) queueView(r *http.Request, name string) (queueView, error) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	c, err := h.c.Counts(ctx, name)
	if err != nil {
		return queueView{}, err
	}
	rc, err := h.c.Ranking(ctx, name)
	if err != nil {
		return queueView{}, err
	}
	mins, err := h.c.Activity(ctx, name, sparkMinutes)
	return queueView{Name: name, Counts: c, Ranking: rc, Recent: recent(mins)}, err
}

// queueViews is every queue's view, for the overview page and GET /api/queues.
func (h *Handler) queueViews(r *http.Request) ([]queueView, error) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	names, err := h.c.Queues(ctx)
	if err != nil {
		return nil, err
	}
	out := []queueView{}
	for _, n := range names {
		v, err := h.queueView(r, n)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (h *Handler) queues(w http.ResponseWriter, r *http.Request) {
	qs, err := h.queueViews(r)
	must200(w, qs, err)
}

func (h *Handler) queueInfo(w http.ResponseWriter, r *http.Request) {
	v, err := h.queueView(r, r.PathValue("queue"))
	must200(w, v, err)
}

// MaxPendingOffset is how deep the pending listing goes, in the JSON API (a deeper
// offset is a 400) and the queue page (shown from here, with a note). A pending page
// reads the first offset+limit jobs of every lane and merges them, so its cost grows
// with the offset times the lanes, whatever the backlog; at 5,000 it stays within the
// dashboard's 100 ms target with a million pending jobs (go run ./bench dashboard).
// The other states' listings read one sorted set by rank: cheap at any offset.
const MaxPendingOffset = 5000

func (h *Handler) jobs(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	state := job.State(r.URL.Query().Get("state"))
	if state == "" {
		state = job.StatePending
	}
	switch state {
	case job.StatePending, job.StateScheduled, job.StateActive, job.StateFailed, job.StateSucceeded, job.StateCanceled:
	default:
		writeErr(w, http.StatusBadRequest, fmtErr("state %q (pending, scheduled, active, failed, succeeded or canceled)", state))
		return
	}
	offset, err := offsetParam(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	if state == job.StatePending && offset > MaxPendingOffset {
		writeErr(w, http.StatusBadRequest, fmtErr("offset %s is past the pending listing's limit of %d (each page merges every lane's first offset+limit jobs)",
			r.URL.Query().Get("offset"), MaxPendingOffset))
		return
	}
	js, err := h.c.List(ctx, r.PathValue("queue"), state, offset, max(intParam(r, "limit", 50, 500), 1))
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	out := make([]JobView, len(js))
	for i, j := range js {
		out[i] = View(j)
	}
	writeJSON(w, out)
}

func (h *Handler) job(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	j, err := h.c.Job(ctx, r.PathValue("queue"), r.PathValue("id"))
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	writeJSON(w, View(j))
}

// rankingReport is a queue's learned statistics and quality, for the ranking page
// and GET /api/queues/{q}/ranking.
func (h *Handler) rankingReport(r *http.Request, q string) ([]ranking.TaskStats, queue.RankingReport, error) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	stats, err := h.c.RankingStats(ctx, q)
	if err != nil {
		return nil, queue.RankingReport{}, err
	}
	rep, err := h.c.RankingQuality(ctx, q, 1000)
	return stats, rep, err
}

func (h *Handler) ranking(w http.ResponseWriter, r *http.Request) {
	stats, rep, err := h.rankingReport(r, r.PathValue("queue"))
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	writeJSON(w, map[string]any{"config": rep.Config, "tasks": stats, "quality": rep.Overall, "quality_by_task": rep.ByTask})
}

// fair is a queue's fair mode and its keys with pending jobs, most pending first.
func (h *Handler) fair(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	offset, err := offsetParam(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	q := r.PathValue("queue")
	mode, err := h.c.FairMode(ctx, q)
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	keys, total, err := h.c.FairKeys(ctx, q, offset, max(intParam(r, "limit", 50, 500), 1))
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	if keys == nil {
		keys = []fairshare.KeyInfo{}
	}
	writeJSON(w, map[string]any{"mode": mode, "total": total, "offset": offset, "keys": keys})
}

func (h *Handler) workers(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	ws, err := h.c.Workers(ctx)
	if ws == nil {
		ws = []queue.WorkerInfo{}
	}
	must200(w, ws, err)
}

func (h *Handler) beatList(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Beat == nil {
		writeJSON(w, []any{})
		return
	}
	ctx, cancel := ctxOf(r)
	defer cancel()
	st, err := h.cfg.Beat.List(ctx)
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	out := make([]beatView, len(st))
	for i, s := range st {
		out[i] = beatView{Name: s.Name, Spec: s.Spec, TimeZone: s.TimeZone, Task: s.Task, Args: decoded(s.Args),
			Queue: s.Queue, Disabled: s.Disabled, Overlap: string(s.Overlap), CatchUp: string(s.CatchUp), Error: s.Error}
		if s.Priority != nil {
			out[i].Priority = s.Priority
		}
		if !s.Next.IsZero() {
			out[i].Next = &st[i].Next
		}
		if !s.LastTick.IsZero() {
			out[i].LastTick = &st[i].LastTick
		}
		if s.LastJob != nil {
			v := View(s.LastJob)
			out[i].LastJob = &v
		}
	}
	writeJSON(w, out)
}

// beatView is a beat entry as the JSON API shows it.
type beatView struct {
	Name     string     `json:"name"`
	Spec     string     `json:"spec"`
	TimeZone string     `json:"time_zone,omitempty"`
	Task     string     `json:"task"`
	Args     any        `json:"args"`
	Queue    string     `json:"queue"`
	Priority *int       `json:"priority,omitempty"`
	Overlap  string     `json:"overlap,omitempty"`
	CatchUp  string     `json:"catch_up,omitempty"`
	Disabled bool       `json:"disabled"`
	Next     *time.Time `json:"next,omitempty"`
	LastTick *time.Time `json:"last_tick,omitempty"`
	LastJob  *JobView   `json:"last_job,omitempty"`
	Error    string     `json:"error,omitempty"`
}
