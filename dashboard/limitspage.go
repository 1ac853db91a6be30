package dashboard

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

// limitsPageSize is how many per-key rows the limits page lists at a time.
const limitsPageSize = 50

// limitRow is a limit as the limits page shows it.
type limitRow struct {
	LimitView
	ID        string // data-limit: "queue", "key" or "task:<name>"
	What      string // "task <name>", "each fair key", "the queue"
	ClearBody string // the JSON its Clear button posts
	MaxText   string // the cap as its form shows it ("" for none)
	Tokens    string // the bucket now, "4.2" ("" without a rate of its own)
}

// keyRow is a fair key's use of the per-key limit as the limits page shows it.
type keyRow struct {
	KeyLimitView
	Name   string // the key, or fairshare.DefaultKeyName
	Tokens string // its bucket now ("" without a per-key rate)
}

// tokensText shows a bucket's tokens with one decimal ("" for none).
func tokensText(t *float64) string {
	if t == nil {
		return ""
	}
	return strconv.FormatFloat(*t, 'f', 1, 64)
}

// limitsPage is a queue's limits with their use, each with a form to change or clear
// it, a form to set any limit, and the fair keys with jobs running under the per-key
// limit, limitsPageSize at a time.
func (h *Handler) limitsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := ctxOf(r)
	defer cancel()
	q := r.PathValue("queue")
	offset, err := offsetParam(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	all, err := QueueLimits(ctx, h.c, q)
	if err != nil {
		writeErr(w, status(err), err)
		return
	}
	v := all.page(offset, limitsPageSize)
	rows := make([]limitRow, len(v.Limits))
	for i, l := range v.Limits {
		rows[i] = limitRow{LimitView: l, ID: string(l.Scope), What: "the queue"}
		body := map[string]any{"scope": l.Scope, "clear": true}
		switch l.Scope {
		case job.ScopeTask:
			rows[i].ID, rows[i].What = "task:"+l.Task, "task "+l.Task
			body["task"] = l.Task
		case job.ScopeKey:
			rows[i].What = "each fair key"
		}
		b, _ := json.Marshal(body)
		rows[i].ClearBody = string(b)
		if l.MaxRunning > 0 {
			rows[i].MaxText = strconv.Itoa(l.MaxRunning)
		}
		rows[i].Tokens = tokensText(l.Tokens)
	}
	keys := make([]keyRow, len(v.Keys))
	for i, k := range v.Keys {
		keys[i] = keyRow{KeyLimitView: k, Name: k.Key, Tokens: tokensText(k.Tokens)}
		if k.Key == "" {
			keys[i].Name = fairshare.DefaultKeyName
		}
	}
	keyLimit, hasKeyLimit := v.KeyLimit()
	h.render(w, r, "limits", "Limits of "+q, map[string]any{"Queue": q, "View": v, "Limits": rows, "Keys": keys,
		"KeyLimit": keyLimit, "HasKeyLimit": hasKeyLimit, "KeyLimitIdle": v.KeyLimitIdle(),
		"Page": pageOf(offset, len(v.Keys), int64(v.KeysTotal), limitsPageSize, 0), "PageSize": limitsPageSize,
		"MaxCap": job.MaxRunningLimit, "DefaultKey": fairshare.DefaultKeyName})
}
