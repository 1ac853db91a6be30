package devredis

import (
	"context"
	"testing"
	"time"

	"github.com/chronoq/chronoq/internal/testutil"
)

// TestEmbeddedExpiresKeys: the embedded Redis's clock follows the real one, so
// retention and claim TTLs run out as on a real server.
func TestEmbeddedExpiresKeys(t *testing.T) {
	t.Setenv("CHRONOQ_REDIS_URL", "")
	rdb, stop, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the key expires", func() bool {
		n, err := rdb.Exists(ctx, "k").Result()
		return err == nil && n == 0
	})
}
