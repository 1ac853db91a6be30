package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/chronoq/chronoq/internal/testutil"
	"github.com/chronoq/chronoq/queue"
	"github.com/redis/go-redis/v9"
)

// A Wait whose deadline passes before its write to the shared subscription connection
// is done (the dial, the SUBSCRIBE, the PING of a gone job) ends with its context's
// error, not an i/o timeout, and leaves the connection to the other waiters.
func TestWaitDeadlineIsTheContextsError(t *testing.T) {
	testutil.CheckLeaks(t)
	rdb := redistest.Client(t)
	for _, tc := range []struct {
		name  string
		stall time.Duration // Redis busy this long when the Wait starts
		wait  time.Duration
		warm  bool // the client's subscription connection is up before the stall
	}{
		{"deadline already passed", 0, 0, false},
		{"deadline passes while connecting during a stall", 400 * time.Millisecond, 100 * time.Millisecond, false},
		{"deadline passes during a stall", 400 * time.Millisecond, 100 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// the client's subscription hub must end with c.Close
			testutil.CheckLeaks(t)
			own := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr}) // no connection yet
			defer own.Close()
			c := queue.NewClient(own, queue.Config{})
			defer c.Close()
			if tc.warm {
				// the hub is up, so the Wait's write is its SUBSCRIBE (or the PING)
				warm, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, _ = c.Handle("warm", "none").Wait(warm)
				cancel()
			}
			if tc.stall > 0 {
				stalled := make(chan error, 1)
				go func() {
					stalled <- rdb.Eval(context.Background(), `local t0 = redis.call('TIME')
local stop_at = tonumber(t0[1]) * 1e6 + tonumber(t0[2]) + tonumber(ARGV[1])
repeat local t = redis.call('TIME') until tonumber(t[1]) * 1e6 + tonumber(t[2]) >= stop_at
return 1`, nil, tc.stall.Microseconds()).Err()
				}()
				defer func() { <-stalled }()
				probe := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, ReadTimeout: 20 * time.Millisecond, MaxRetries: -1})
				defer probe.Close()
				for { // the stall has begun once a read times out on it
					if err := probe.Ping(context.Background()).Err(); err != nil {
						break
					}
					select {
					case err := <-stalled:
						t.Fatalf("the stall ended before a read saw it: %v", err)
					default:
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), tc.wait)
			defer cancel()
			_, err := c.Handle("default", "no-such-job").Wait(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Wait past its deadline: %v, want the context's deadline error", err)
			}
		})
	}
}
