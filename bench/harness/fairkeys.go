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
	"github.com/chronoq/chronoq/ranking/fairshare"
	"github.com/redis/go-redis/v9"
)

// The fetch-scale run of the fair bench: the cost of a fetch may grow at most
// logarithmically with the number of backlogged keys.
const (
	fairScaleJobs  = 200000 // pending jobs, spread evenly over the keys
	fairScaleTaken = 20000  // jobs fetched and acknowledged per measurement
	fairScaleBatch = 10     // jobs per fetch, a worker's batch at concurrency 10
)

// FairKeysScale measures the fetch rate (fetch of 10 + its acknowledgement, one
// client, share mode, every key backlogged) with keys backlogged keys against 10, the
// two alternated repeat times: `BENCH fair keys=K fetch_ratio=R` with R the median of
// rate(10 keys) / rate(K keys).
func FairKeysScale(ctx context.Context, rdb *redis.Client, keys, repeat int, progress func(string)) (Line, error) {
	var ratios, few, many []float64
	for r := 0; r < repeat; r++ {
		a, err := fairFetchRate(ctx, rdb, 10)
		if err != nil {
			return Line{}, err
		}
		b, err := fairFetchRate(ctx, rdb, keys)
		if err != nil {
			return Line{}, err
		}
		progress(fmt.Sprintf("# run %d: 10 keys %s jobs/s, %d keys %s jobs/s, ratio %s", r+1, f0(a), keys, f0(b), f3(a/b)))
		few, many, ratios = append(few, a), append(many, b), append(ratios, a/b)
	}
	return Line{Head: "fair", KV: [][2]string{{"keys", strconv.Itoa(keys)}, {"fetch_ratio", f3(median(ratios))},
		{"jobs_per_s_10_keys", f0(median(few))}, {"jobs_per_s_many_keys", f0(median(many))}}}, nil
}

// fairFetchRate fills a fresh queue with fairScaleJobs jobs over keys keys and returns
// how many jobs a second one client fetches and acknowledges from it.
func fairFetchRate(ctx context.Context, rdb *redis.Client, keys int) (float64, error) {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return 0, err
	}
	c := queue.NewClient(rdb, queue.Config{})
	defer c.Close()
	const q = "fairscale"
	if err := c.SetFairMode(ctx, q, fairshare.ModeShare); err != nil {
		return 0, err
	}
	payload, err := job.EncodeArgs(0)
	if err != nil {
		return 0, err
	}
	const chunk = 10000
	for done := 0; done < fairScaleJobs; done += chunk {
		reqs := make([]queue.Request, chunk)
		for i := range reqs {
			reqs[i] = queue.Request{Task: "noop", Payload: payload,
				Options: []job.Option{job.Queue(q), job.FairKey("tenant-" + strconv.Itoa((done+i)%keys))}}
		}
		if _, err := c.EnqueueBatch(ctx, reqs); err != nil {
			return 0, err
		}
	}
	s := clientstore.Of(c)
	start := time.Now()
	for taken := 0; taken < fairScaleTaken; {
		got, err := s.Fetch(ctx, q, "w", fairScaleBatch, time.Minute)
		if err != nil {
			return 0, err
		}
		if len(got) == 0 {
			return 0, fmt.Errorf("fair keys=%d: nothing to fetch after %d jobs", keys, taken)
		}
		done := make([]store.Done, len(got))
		for i, f := range got {
			done[i] = store.Done{ID: f.ID, Started: f.At, Fair: f.Fair, Sample: store.Sample{Task: "noop", Ran: time.Millisecond}}
		}
		if _, err := s.Ack(ctx, q, "w", done); err != nil {
			return 0, err
		}
		taken += len(got)
	}
	return float64(fairScaleTaken) / time.Since(start).Seconds(), nil
}
