package cli_test

import (
	"context"
	"errors"
	"testing"

	"github.com/chronoq/chronoq/cli"
	"github.com/chronoq/chronoq/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestMainWithOwnClient: a user's main that builds its own Redis client gets every
// command on it, whatever --redis says.
func TestMainWithOwnClient(t *testing.T) {
	redistest.Client(t) // flush
	connect := func(ctx context.Context) (redis.UniversalClient, error) {
		return redis.NewClient(&redis.Options{Addr: redistest.Addr()}), nil
	}
	opts := cli.Options{Connect: connect}
	if code := cli.MainWith([]string{"enqueue", "demo.add", "--queue", "own", "--redis", "redis://127.0.0.1:1/0"}, opts); code != cli.ExitOK {
		t.Fatalf("enqueue through the user's client: exit %d", code)
	}
	if code := cli.MainWith([]string{"pause", "own"}, opts); code != cli.ExitOK {
		t.Fatalf("pause: exit %d", code)
	}
	failing := cli.Options{Connect: func(ctx context.Context) (redis.UniversalClient, error) {
		return nil, errors.New("vault sealed")
	}}
	if code := cli.MainWith([]string{"info"}, failing); code != cli.ExitFailure {
		t.Fatalf("a failing Connect: exit %d, want %d", code, cli.ExitFailure)
	}
}
