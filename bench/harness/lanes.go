package harness

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/redis/go-redis/v9"
)

// DeadLanes measures what lanes that held work once cost a fetch now: the rate of
// one-job fetches from one live lane after draining 10 lanes, and after draining dead
// lanes (one job each, distinct task types: the worst case of job.Estimate buckets and
// many task names). The same store drains and fetches, as a worker that has run through
// all those lanes itself would. The ratio is the 10-lane rate over the dead-lane rate.
func DeadLanes(ctx context.Context, rdb *redis.Client, dead, fetches int, progress func(string)) (Line, error) {
	var rates, redisUs [2]float64
	for i, lanes := range []int{10, dead} {
		rate, us, err := fetchRateAfter(ctx, rdb, lanes, fetches)
		if err != nil {
			return Line{}, err
		}
		rates[i], redisUs[i] = rate, us
		progress(fmt.Sprintf("# w4 after draining %d lanes: %s fetches/s, %s Redis µs per fetch", lanes, f0(rate), f1(us)))
	}
	return Line{Head: "w4", KV: [][2]string{{"dead_lanes", strconv.Itoa(dead)}, {"fetch_ratio", f3(rates[0] / rates[1])},
		{"fetches_per_s", f0(rates[1])}, {"redis_us_per_fetch", f1(redisUs[1])}, {"base_redis_us_per_fetch", f1(redisUs[0])}}}, nil
}

// fetchRateAfter drains lanes one-job lanes through a store, then times fetches of one
// job each from a lane holding fetches jobs; it returns fetches per second and Redis CPU
// µs per fetch.
func fetchRateAfter(ctx context.Context, rdb *redis.Client, lanes, fetches int) (float64, float64, error) {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return 0, 0, err
	}
	c := queue.NewClient(rdb, queue.Config{})
	defer c.Close()
	const q = "bench"
	for done := 0; done < lanes; done += 1000 {
		reqs := make([]queue.Request, min(1000, lanes-done))
		for i := range reqs {
			reqs[i] = queue.Request{Task: "dead" + strconv.Itoa(done+i), Options: []job.Option{job.Queue(q)}}
		}
		if _, err := c.EnqueueBatch(ctx, reqs); err != nil {
			return 0, 0, err
		}
	}
	s := clientstore.Of(c)
	drain := func(n int) (int, error) {
		got, err := s.Fetch(ctx, q, "bench-worker", n, time.Minute)
		if err != nil {
			return 0, err
		}
		done := make([]store.Done, len(got))
		for i, f := range got {
			done[i] = store.Done{ID: f.ID, Started: f.At}
		}
		_, err = s.Ack(ctx, q, "bench-worker", done)
		return len(got), err
	}
	for {
		n, err := drain(store.MaxFetch)
		if err != nil {
			return 0, 0, err
		}
		if n == 0 {
			break
		}
	}
	reqs := make([]queue.Request, fetches)
	for i := range reqs {
		reqs[i] = queue.Request{Task: "live", Options: []job.Option{job.Queue(q)}}
	}
	if _, err := c.EnqueueBatch(ctx, reqs); err != nil {
		return 0, 0, err
	}
	before, err := ReadStats(ctx, rdb)
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	for range fetches {
		got, err := s.Fetch(ctx, q, "bench-worker", 1, time.Minute)
		if err != nil {
			return 0, 0, err
		}
		if len(got) != 1 {
			return 0, 0, fmt.Errorf("w4 dead lanes: a fetch took %d jobs, want 1", len(got))
		}
	}
	secs := time.Since(t0).Seconds()
	after, err := ReadStats(ctx, rdb)
	if err != nil {
		return 0, 0, err
	}
	return float64(fetches) / secs, (after.CPUSec - before.CPUSec) * 1e6 / float64(fetches), nil
}
