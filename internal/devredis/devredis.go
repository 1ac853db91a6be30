package devredis

import (
	"os"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Open connects to CHRONOQ_REDIS_URL when it is set, else starts an embedded Redis on
// a free loopback port. stop closes the client (and the embedded server).
func Open() (rdb *redis.Client, stop func(), err error) {
	if url := os.Getenv("CHRONOQ_REDIS_URL"); url != "" {
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, nil, err
		}
		rdb := redis.NewClient(opt)
		return rdb, func() { _ = rdb.Close() }, nil
	}
	m, stopServer, err := Embedded("127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	rdb = redis.NewClient(&redis.Options{Addr: m.Addr()})
	return rdb, func() { _ = rdb.Close(); stopServer() }, nil
}

// Embedded starts an embedded Redis on addr (port 0: any free port). miniredis expires
// keys only when told that time has passed, so its clock is driven from the real one.
func Embedded(addr string) (*miniredis.Miniredis, func(), error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		last := time.Now()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return m, func() { close(done); m.Close() }, nil
}
