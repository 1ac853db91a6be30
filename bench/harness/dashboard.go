package harness

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"time"

	"github.com/chronoq/chronoq/dashboard"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/redis/go-redis/v9"
)

// Dashboard measures every page and API view with n pending jobs (plus failed and
// scheduled ones): each path is fetched 5 times; the line reports the slowest path's
// median.
func Dashboard(ctx context.Context, rdb *redis.Client, n int, progress func(string)) (Line, error) {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return Line{}, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := queue.NewClient(rdb, queue.Config{Logger: quiet})
	defer c.Close()
	sys := &Chronoq{c: c}
	if err := sys.EnqueueTypes(ctx, n, func(done int) {
		if done%200000 == 0 {
			progress(fmt.Sprintf("# dashboard: %d pending", done))
		}
	}); err != nil {
		return Line{}, err
	}
	reqs := make([]queue.Request, 1000)
	for i := range reqs {
		reqs[i] = queue.Request{Task: "noop", Options: []job.Option{job.Queue("bench"), job.In(time.Duration(i+1) * time.Hour)}}
	}
	if _, err := c.EnqueueBatch(ctx, reqs); err != nil {
		return Line{}, err
	}
	pending, err := c.List(ctx, "bench", job.StatePending, 0, 1)
	if err != nil || len(pending) == 0 {
		return Line{}, fmt.Errorf("dashboard bench: no pending job: %v", err)
	}
	srv := httptest.NewServer(dashboard.New(c, dashboard.Config{Logger: quiet}))
	defer srv.Close()
	paths := []string{"/", "/queues/bench", "/queues/bench?state=scheduled", "/queues/bench/jobs/" + pending[0].ID,
		"/queues/bench/ranking", "/workers", "/beat", "/api/queues", "/api/queues/bench/jobs?limit=100",
		"/api/queues/bench/jobs?offset=5000&limit=100", "/metrics"}
	worst, worstPath := 0.0, ""
	for _, p := range paths {
		var ms []float64
		for i := 0; i < 5; i++ {
			start := time.Now()
			resp, err := http.Get(srv.URL + p)
			if err != nil {
				return Line{}, err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return Line{}, fmt.Errorf("%s: status %d", p, resp.StatusCode)
			}
			ms = append(ms, float64(time.Since(start).Microseconds())/1000)
		}
		sort.Float64s(ms)
		progress(fmt.Sprintf("# dashboard %s: median %.1f ms, max %.1f ms", p, ms[2], ms[4]))
		if ms[2] > worst {
			worst, worstPath = ms[2], p
		}
	}
	progress("# dashboard slowest: " + worstPath)
	return Line{Head: "dashboard", KV: [][2]string{{"pending", strconv.Itoa(n)}, {"max_page_ms", f1(worst)}}}, nil
}
