package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/redis/go-redis/v9"
)

// W5 measures the far-future store: bulk-schedule n jobs spread over a year (rate and
// Redis bytes per job); then, with those waiting, 10,000 jobs due within the next 10 s
// run by one worker process (due-lag: due time to handler start, p50/p99); then the W1
// drain with the n jobs waiting against an empty store (slowdown).
func W5(ctx context.Context, sys *Chronoq, rdb *redis.Client, n int, progress func(string)) (Line, error) {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return Line{}, err
	}
	empty, err := ReadStats(ctx, rdb)
	if err != nil {
		return Line{}, err
	}
	r := rand.New(rand.NewPCG(5, 5))
	year := int64(365 * 24 * time.Hour)
	start := time.Now()
	const chunk = 10000
	for done := 0; done < n; done += chunk {
		reqs := make([]queue.Request, min(chunk, n-done))
		for i := range reqs {
			at := start.Add(time.Hour + time.Duration(r.Int64N(year)))
			reqs[i] = queue.Request{Task: "noop", Payload: []byte{0x00}, Options: []job.Option{job.Queue("bench"), job.At(at)}}
		}
		if _, err := sys.c.EnqueueBatch(ctx, reqs); err != nil {
			return Line{}, err
		}
		if (done+chunk)%200000 == 0 {
			progress(fmt.Sprintf("# w5: %d scheduled", done+chunk))
		}
	}
	rate := float64(n) / time.Since(start).Seconds()
	filled, err := ReadStats(ctx, rdb)
	if err != nil {
		return Line{}, err
	}
	bytes := float64(filled.UsedBytes-empty.UsedBytes) / float64(n)

	// due-lag: a worker process is idle, 10k jobs come due over 10 s, each carrying its
	// due time; the handler records start − due
	const due = 10000
	cmd := sys.WorkerCmd("--child-workload", "w5", "--conc", "50", "--jobs", strconv.Itoa(due))
	res, err := runChildWhile(ctx, rdb, cmd, func() error {
		base := time.Now().Add(2 * time.Second)
		reqs := make([]queue.Request, due)
		for i := range reqs {
			at := base.Add(time.Duration(r.Int64N(int64(10 * time.Second))))
			p, _ := job.EncodeArgs(at.UnixNano())
			reqs[i] = queue.Request{Task: "noop", Payload: p, Options: []job.Option{job.Queue("bench"), job.At(at)}}
		}
		_, err := sys.c.EnqueueBatch(ctx, reqs)
		return err
	})
	if err != nil {
		return Line{}, err
	}
	lat := make([]float64, len(res.LatenciesNs))
	for i, ns := range res.LatenciesNs {
		lat[i] = float64(ns) / 1e6
	}
	sort.Float64s(lat)
	pct := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }

	// the drain, with the n jobs waiting, then without
	with, err := drainRate(ctx, sys, rdb, 20000, false)
	if err != nil {
		return Line{}, err
	}
	without, err := drainRate(ctx, sys, rdb, 20000, true)
	if err != nil {
		return Line{}, err
	}
	progress(fmt.Sprintf("# w5 drain: %s jobs/s with %d scheduled jobs waiting, %s without", f0(with), n, f0(without)))
	return Line{Head: "w5", KV: [][2]string{{"jobs", strconv.Itoa(n)}, {"schedule_jobs_per_s", f0(rate)},
		{"bytes_per_job", f0(bytes)}, {"lag_p50_ms", f3(pct(0.50))}, {"lag_p99_ms", f3(pct(0.99))},
		{"drain_slowdown", f3(1 - with/without)}}}, nil
}

// drainRate enqueues n pending no-op jobs and measures one worker process draining them
// (flushing first when flush is set).
func drainRate(ctx context.Context, sys *Chronoq, rdb *redis.Client, n int, flush bool) (float64, error) {
	if flush {
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			return 0, err
		}
	}
	if _, err := sys.EnqueueBulk(ctx, n); err != nil {
		return 0, err
	}
	res, err := runChild(ctx, sys, "w1", 10, n)
	if err != nil {
		return 0, err
	}
	return float64(n) / (float64(res.DoneNs-res.FirstStartNs) / 1e9), nil
}
