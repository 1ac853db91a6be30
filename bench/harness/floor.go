package harness

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// RawRedis is the floor of any Redis-notified pickup: a bare RPUSH from the producer
// and a bare BLPOP in a separate worker process, no queue logic at all. W2 on it
// measures what the machine (process wake-ups, loopback, Redis) costs by itself.
type RawRedis struct {
	rdb       *redis.Client
	url       string
	childArgs []string
}

// NewRawRedis returns the floor system; its worker is this binary with childArgs.
func NewRawRedis(rdb *redis.Client, url string, childArgs ...string) *RawRedis {
	return &RawRedis{rdb: rdb, url: url, childArgs: childArgs}
}

// Name implements System.
func (s *RawRedis) Name() string { return "raw-redis" }

// EnqueueOne implements System.
func (s *RawRedis) EnqueueOne(ctx context.Context, ns int64) error {
	return s.rdb.RPush(ctx, "bench:raw", ns).Err()
}

// EnqueueBulk implements System: not a queue, no bulk.
func (s *RawRedis) EnqueueBulk(ctx context.Context, n int) (bool, error) { return false, nil }

// WorkerCmd implements System.
func (s *RawRedis) WorkerCmd(args ...string) *Cmd {
	return selfCmd(append(append(append([]string(nil), s.childArgs...), "--redis", s.url), args...)...)
}

// RawRedisChild pops n items with BLPOP and reports their latency.
func RawRedisChild(url string, n int) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opt)
	ctx := context.Background()
	rec := NewRecorder(n)
	rdb.Set(ctx, "bench:ready", "1", time.Minute)
	for i := 0; i < n; i++ {
		res, err := rdb.BLPop(ctx, time.Minute, "bench:raw").Result()
		if err != nil {
			return fmt.Errorf("blpop: %w", err)
		}
		ns, _ := strconv.ParseInt(res[1], 10, 64)
		rec.Start(ns)
		rec.Done()
	}
	rec.Print(time.Now().UnixNano())
	return nil
}
