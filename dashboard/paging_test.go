package dashboard_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/chronoq/chronoq/ranking/fairshare"
)

// enqueueN enqueues n jobs of task "t" to q in one bulk call and returns their ids in
// dequeue order (one lane, one millisecond at most apart: by arrival, then by id).
func enqueueN(t *testing.T, c *queue.Client, q string, n int, opts ...job.Option) []string {
	t.Helper()
	reqs := make([]queue.Request, n)
	for i := range reqs {
		reqs[i] = queue.Request{Task: "t", Options: append([]job.Option{job.Queue(q)}, opts...)}
	}
	hs, err := c.EnqueueBatch(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i, h := range hs {
		ids[i] = h.ID
	}
	return ids
}

// link is how the queue page writes a paging link (html/template escapes the &).
func link(id, base, q string, state job.State, offset int) string {
	return `id="` + id + `" rel="` + id + `" href="` + base + `/queues/` + q + `?state=` + string(state) + `&offset=` + strconv.Itoa(offset) + `"`
}

// TestQueuePagePaging: the queue page lists a state 100 jobs at a time with "jobs X–Y of
// N" and Previous/Next links; page 2 starts at the 101st job; a bad offset is a 400
// naming the parameter, on the page and in the JSON API; the pending listing stops at
// dashboard.MaxPendingOffset.
func TestQueuePagePaging(t *testing.T) {
	cl, c := setup(t, dashboard.Config{})
	ctx := context.Background()
	pending := enqueueN(t, c, "default", 250)

	// 120 failed jobs: the failed listing is newest first, as the JSON API lists it
	_ = enqueueN(t, c, "failing", 120, job.MaxRetries(0))
	for n := 0; n < 120; {
		got, err := clientstore.Of(c).Fetch(ctx, "failing", "w", 120, time.Minute)
		if err != nil || len(got) == 0 {
			t.Fatalf("fetch: %d jobs, %v", len(got), err)
		}
		for _, f := range got {
			if ok, err := clientstore.Of(c).Fail(ctx, "failing", "w", storeFailure(f.ID)); err != nil || !ok {
				t.Fatalf("fail %s: %v %v", f.ID, ok, err)
			}
			n++
		}
	}
	failedJobs, err := c.List(ctx, "failing", job.StateFailed, 0, 200)
	if err != nil || len(failedJobs) != 120 {
		t.Fatalf("failed listing: %d jobs, %v", len(failedJobs), err)
	}
	failed := make([]string, len(failedJobs))
	for i, j := range failedJobs {
		failed[i] = j.ID
	}

	cases := []struct {
		name   string
		path   string
		code   int
		in     []string // in the body
		out    []string // not in the body
		noLink []string // "prev", "next": links the page must not offer
	}{
		{name: "first page", path: "/queues/default?norefresh", code: 200,
			in:     []string{"Jobs 1–100 of 250", pending[0], pending[99], link("next", "", "default", job.StatePending, 100)},
			out:    []string{pending[100]},
			noLink: []string{"prev"}},
		{name: "page 2 shows the 101st job", path: "/queues/default?state=pending&offset=100&norefresh", code: 200,
			in: []string{"Jobs 101–200 of 250", pending[100], pending[199],
				link("prev", "", "default", job.StatePending, 0), link("next", "", "default", job.StatePending, 200)},
			out: []string{pending[99], pending[200]}},
		{name: "last page", path: "/queues/default?offset=200&norefresh", code: 200,
			in:     []string{"Jobs 201–250 of 250", pending[200], pending[249], link("prev", "", "default", job.StatePending, 100)},
			out:    []string{pending[199]},
			noLink: []string{"next"}},
		{name: "an offset not on a page boundary", path: "/queues/default?offset=50&norefresh", code: 200,
			in:  []string{"Jobs 51–150 of 250", pending[50], link("prev", "", "default", job.StatePending, 0), link("next", "", "default", job.StatePending, 150)},
			out: []string{pending[49]}},
		{name: "past the end", path: "/queues/default?offset=300&norefresh", code: 200,
			in:     []string{"No pending job at offset 300 (250 in all)", link("prev", "", "default", job.StatePending, 200)},
			noLink: []string{"next"}},
		{name: "far past the end", path: "/queues/default?offset=1000&norefresh", code: 200,
			in:     []string{"No pending job at offset 1000 (250 in all)", link("prev", "", "default", job.StatePending, 200)},
			noLink: []string{"next"}},
		{name: "failed, page 2", path: "/queues/failing?state=failed&offset=100&norefresh", code: 200,
			in:  []string{"Jobs 101–120 of 120", failed[100], failed[119], link("prev", "", "failing", job.StateFailed, 0)},
			out: []string{failed[99]}, noLink: []string{"next"}},
		{name: "one page only", path: "/queues/nothing?norefresh", code: 200,
			in: []string{"No pending job"}, out: []string{`id="paging"`}},
		{name: "offset not a number", path: "/queues/default?offset=abc", code: 400, in: []string{"offset abc: want a whole number from 0 to 1073741824"}},
		{name: "offset negative", path: "/queues/default?offset=-1", code: 400, in: []string{"offset -1: want a whole number"}},
		{name: "offset a fraction", path: "/queues/default?state=failed&offset=1.5", code: 400, in: []string{"offset 1.5: want a whole number"}},
		{name: "offset too large", path: "/queues/default?state=failed&offset=1073741825", code: 400, in: []string{"offset 1073741825: want a whole number"}},
		{name: "API: offset not a number", path: "/api/queues/default/jobs?offset=x1", code: 400, in: []string{"offset x1: want a whole number"}},
		{name: "API: page 2", path: "/api/queues/default/jobs?offset=100&limit=1", code: 200, in: []string{`"id":"` + pending[100] + `"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkPage(t, cl, tc.path, tc.code, tc.in, tc.out, tc.noLink)
		})
	}
}

// TestQueuePagePagingDepth: the pending listing's last page is at MaxPendingOffset. A
// page just before it links to it; that page offers no Next and says why.
func TestQueuePagePagingDepth(t *testing.T) {
	cl, c := setup(t, dashboard.Config{BasePath: "/ops"})
	deepest := dashboard.MaxPendingOffset
	ids := enqueueN(t, c, "deep", deepest+150)
	cases := []struct {
		path   string
		in     []string
		noLink string
	}{
		{"/queues/deep?offset=" + strconv.Itoa(deepest-50) + "&norefresh",
			[]string{"Jobs " + strconv.Itoa(deepest-49) + "–" + strconv.Itoa(deepest+50) + " of " + strconv.Itoa(deepest+150),
				link("next", "/ops", "deep", job.StatePending, deepest), link("prev", "/ops", "deep", job.StatePending, deepest-150)}, ""},
		{"/queues/deep?offset=" + strconv.Itoa(deepest) + "&norefresh",
			[]string{ids[deepest], "Jobs " + strconv.Itoa(deepest+1) + "–" + strconv.Itoa(deepest+100),
				"The pending listing goes at most " + strconv.Itoa(deepest) + " deep: later jobs are not listed."}, "next"},
		{"/queues/deep?state=pending&offset=" + strconv.Itoa(deepest+100) + "&norefresh",
			[]string{"Shown from offset " + strconv.Itoa(deepest), ids[deepest]}, "next"},
	}
	for _, tc := range cases {
		code, data := cl.do("GET", tc.path, nil)
		if code != 200 {
			t.Fatalf("%s: %d %.300s", tc.path, code, data)
		}
		for _, s := range tc.in {
			if !bytes.Contains(data, []byte(s)) {
				t.Errorf("%s lacks %q", tc.path, s)
			}
		}
		if tc.noLink != "" && bytes.Contains(data, []byte(`id="`+tc.noLink+`"`)) {
			t.Errorf("%s offers a %s link", tc.path, tc.noLink)
		}
	}
}

// enqueueFair puts q in share mode and enqueues n[k] jobs of task "t" for each key k
// ("" is the default key), in one bulk call.
func enqueueFair(t *testing.T, c *queue.Client, q string, n map[string]int) {
	t.Helper()
	ctx := context.Background()
	if err := c.SetFairMode(ctx, q, fairshare.ModeShare); err != nil {
		t.Fatal(err)
	}
	var reqs []queue.Request
	for k, m := range n {
		opts := []job.Option{job.Queue(q)}
		if k != "" {
			opts = append(opts, job.FairKey(k))
		}
		for range m {
			reqs = append(reqs, queue.Request{Task: "t", Options: opts})
		}
	}
	if _, err := c.EnqueueBatch(ctx, reqs); err != nil {
		t.Fatal(err)
	}
}

// fairLink is how the fair page writes a paging link (html/template escapes the &).
func fairLink(id, base, q string, offset int) string {
	return `id="` + id + `" rel="` + id + `" href="` + base + `/queues/` + q + `/fair?offset=` + strconv.Itoa(offset) + `"`
}

var fairRow = regexp.MustCompile(`<tr data-key="([^"]*)">`)

// TestFairPagePaging: the fair page lists a queue's keys with pending jobs 50 at a
// time, the biggest backlog first, with "Keys X–Y of N" and Previous/Next links; page 2
// starts at the 51st key; a bad offset is a 400 naming the parameter.
func TestFairPagePaging(t *testing.T) {
	cl, c := setup(t, dashboard.Config{BasePath: "/ops"})
	// key k<i> has i+1 pending jobs: k119 has the biggest backlog, k000 the smallest
	n := map[string]int{}
	var byBacklog []string
	for i := 119; i >= 0; i-- {
		k := fmt.Sprintf("k%03d", i)
		n[k] = i + 1
		byBacklog = append(byBacklog, k)
	}
	enqueueFair(t, c, "tenants", n)
	cases := []struct {
		name   string
		path   string
		code   int
		keys   []string // the rows, in order
		in     []string
		noLink []string
	}{
		{name: "first page", path: "/queues/tenants/fair?norefresh", code: 200, keys: byBacklog[:50],
			in:     []string{"Keys 1–50 of 120, 50 a page", `<td class="pending">120</td>`, fairLink("next", "/ops", "tenants", 50)},
			noLink: []string{"prev"}},
		{name: "page 2 starts at the 51st key", path: "/queues/tenants/fair?offset=50&norefresh", code: 200, keys: byBacklog[50:100],
			in: []string{"Keys 51–100 of 120", `<td class="pending">70</td>`, fairLink("prev", "/ops", "tenants", 0), fairLink("next", "/ops", "tenants", 100)}},
		{name: "last page", path: "/queues/tenants/fair?offset=100&norefresh", code: 200, keys: byBacklog[100:],
			in: []string{"Keys 101–120 of 120", `<td class="pending">1</td>`, fairLink("prev", "/ops", "tenants", 50)}, noLink: []string{"next"}},
		{name: "an offset not on a page boundary", path: "/queues/tenants/fair?offset=10&norefresh", code: 200, keys: byBacklog[10:60],
			in: []string{"Keys 11–60 of 120", fairLink("prev", "/ops", "tenants", 0), fairLink("next", "/ops", "tenants", 60)}},
		{name: "past the end", path: "/queues/tenants/fair?offset=500&norefresh", code: 200,
			in: []string{"No key with pending jobs at offset 500 (120 in all)", fairLink("prev", "/ops", "tenants", 100)}, noLink: []string{"next"}},
		{name: "no key", path: "/queues/nothing/fair?norefresh", code: 200,
			in: []string{"No key has pending jobs: in off mode new jobs are not placed by key."}, noLink: []string{"prev", "next"}},
		{name: "offset not a number", path: "/queues/tenants/fair?offset=abc", code: 400, in: []string{"offset abc: want a whole number from 0 to 1073741824"}},
		{name: "offset negative", path: "/queues/tenants/fair?offset=-1", code: 400, in: []string{"offset -1: want a whole number"}},
		{name: "API: page 2 agrees", path: "/api/queues/tenants/fair?offset=50&limit=1", code: 200, in: []string{`"key":"k069"`, `"total":120`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := checkPage(t, cl, tc.path, tc.code, tc.in, nil, tc.noLink)
			if tc.code != 200 || strings.HasPrefix(tc.path, "/api/") {
				return
			}
			var rows []string
			for _, m := range fairRow.FindAllSubmatch(data, -1) {
				rows = append(rows, string(m[1]))
			}
			if !slices.Equal(rows, tc.keys) {
				t.Errorf("%s lists %v, want %v", tc.path, rows, tc.keys)
			}
		})
	}
}

// checkPage gets path and checks its status code, that it holds every string of in and
// none of out, and that it offers no link of the ids in noLink; it returns the body.
func checkPage(t *testing.T, cl *client, path string, code int, in, out, noLink []string) []byte {
	t.Helper()
	got, data := cl.do("GET", path, nil)
	if got != code {
		t.Fatalf("%s: %d %.300s, want %d", path, got, data, code)
	}
	for _, s := range in {
		if !bytes.Contains(data, []byte(s)) {
			t.Errorf("%s lacks %q", path, s)
		}
	}
	for _, s := range out {
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("%s holds %q", path, s)
		}
	}
	for _, id := range noLink {
		if bytes.Contains(data, []byte(`id="`+id+`"`)) {
			t.Errorf("%s offers a %s link", path, id)
		}
	}
	return data
}
