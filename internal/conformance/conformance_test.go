package conformance

import (
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestRealRedis(t *testing.T) {
	Run(t, func(t *testing.T) redis.UniversalClient { return redistest.Client(t) })
}

func TestEmbeddedRedis(t *testing.T) {
	Run(t, func(t *testing.T) redis.UniversalClient {
		m := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		return rdb
	})
}
