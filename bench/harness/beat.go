package harness

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/chronoq/chronoq/beat"
	"github.com/chronoq/chronoq/job"
	"github.com/chronoq/chronoq/queue"
	"github.com/redis/go-redis/v9"
)

// Beat measures one beat with n entries due on the same minute: the time from that
// minute to the last of their jobs enqueued.
func Beat(ctx context.Context, rdb *redis.Client, n int, progress func(string)) (Line, error) {
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		return Line{}, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := queue.NewClient(rdb, queue.Config{Logger: quiet})
	defer c.Close()
	if err := c.DeclareQueue(ctx, "bench"); err != nil {
		return Line{}, err
	}
	b, err := beat.New(c, beat.Config{Logger: quiet})
	if err != nil {
		return Line{}, err
	}
	for i := 0; i < n; i++ {
		if err := b.Set(ctx, beat.Entry{Name: "e" + strconv.Itoa(i), Spec: "* * * * *", Task: "noop", Queue: "bench"}); err != nil {
			return Line{}, err
		}
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = b.Run(bctx) }()
	// the entries start from now; the next minute fires them all
	minute := time.Now().Truncate(time.Minute).Add(time.Minute)
	if time.Until(minute) < 5*time.Second { // room for the beat to take the entries up
		minute = minute.Add(time.Minute)
	}
	progress(fmt.Sprintf("# beat: %d entries, waiting for %s", n, minute.Format(time.TimeOnly)))
	deadline := minute.Add(2 * time.Minute)
	for {
		cnt, err := c.Counts(ctx, "bench")
		if err != nil {
			return Line{}, err
		}
		if cnt.Pending >= int64(n) {
			break
		}
		if time.Now().After(deadline) {
			return Line{}, fmt.Errorf("beat: only %d of %d jobs by %s", cnt.Pending, n, deadline.Format(time.TimeOnly))
		}
		time.Sleep(20 * time.Millisecond) // a bench harness watching for the end
	}
	cancel()
	jobs, err := c.List(ctx, "bench", job.StatePending, 0, n)
	if err != nil {
		return Line{}, err
	}
	var last time.Time
	for _, j := range jobs {
		if j.EnqueuedAt.After(last) {
			last = j.EnqueuedAt
		}
	}
	return Line{Head: "beat", KV: [][2]string{{"entries", strconv.Itoa(n)},
		{"last_enqueued_ms", strconv.FormatInt(last.Sub(minute).Milliseconds(), 10)}}}, nil
}
