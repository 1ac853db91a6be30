package queue

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/chronoq/chronoq/internal/clientstore"
	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
	"github.com/redis/go-redis/v9"
)

// Config configures a Client. The zero value works.
type Config struct {
	// Namespace prefixes every key ("chronoq" when empty). Producers and workers of
	// one system must share it.
	Namespace string
	// Now is the clock (time.Now when nil); tests inject one.
	Now func() time.Time
	// Logger receives the client's few log lines (slog.Default when nil).
	Logger *slog.Logger
	// MaxPayload is the largest payload accepted, in bytes (default 512 KiB).
	MaxPayload int
}

// Client enqueues jobs and inspects queues. It is safe for concurrent use; make one
// per process and Close it at the end.
type Client struct {
	store  *store.Store
	log    *slog.Logger
	maxPay int

	queuesMu sync.Mutex
	queues   map[string]bool // registered by this client already

	hubOnce sync.Once
	hub     *waitHub

	defaultsMu sync.Mutex
	defaults   map[string]taskDefaults // declared options by task, as read from Redis

	groupsMu sync.Mutex
	groups   map[string]*commitGroup // group commit of enqueues, by queue (groupcommit.go)
}

// taskDefaults are a task's declared options (nil: none) and when they were read.
type taskDefaults struct {
	opts []job.Option
	read time.Time
}

// defaultsTTL is how long a client trusts the declared options it read: a worker
// started with new declarations is seen within it.
const defaultsTTL = 30 * time.Second

// DeclaredOptions returns the options that workers declared for each of tasks (those
// given to job.NewTask), to go before a caller's own: what a by-name enqueue applies.
// Tasks no worker declared are absent. Read at most once per 30 s per task.
func (c *Client) DeclaredOptions(ctx context.Context, tasks ...string) (map[string][]job.Option, error) {
	return c.declared(ctx, tasks)
}

// declared returns the options workers declared for each of tasks, reading those it
// has not read within defaultsTTL in one round trip.
func (c *Client) declared(ctx context.Context, tasks []string) (map[string][]job.Option, error) {
	now := time.Now()
	out := make(map[string][]job.Option, len(tasks))
	var missing []string
	c.defaultsMu.Lock()
	for _, t := range tasks {
		if _, seen := out[t]; seen || slices.Contains(missing, t) {
			continue
		}
		if d, ok := c.defaults[t]; ok && now.Sub(d.read) < defaultsTTL {
			out[t] = d.opts
		} else {
			missing = append(missing, t)
		}
	}
	c.defaultsMu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	got, err := c.store.TaskDefaults(ctx, missing)
	if err != nil {
		return nil, err
	}
	c.defaultsMu.Lock()
	defer c.defaultsMu.Unlock()
	if c.defaults == nil {
		c.defaults = map[string]taskDefaults{}
	}
	for _, t := range missing {
		c.defaults[t] = taskDefaults{opts: got[t], read: now}
		out[t] = got[t]
	}
	return out, nil
}

// NewClient returns a Client on rdb (a *redis.Client, a cluster or a failover client).
func NewClient(rdb redis.UniversalClient, cfg Config) *Client {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 512 << 10
	}
	return &Client{store: store.New(rdb, cfg.Namespace, cfg.Now), log: cfg.Logger, maxPay: cfg.MaxPayload, queues: map[string]bool{},
		groups: map[string]*commitGroup{}}
}

// chronoq's own packages reach the store through internal/clientstore; the public API
// does not expose it
func init() {
	clientstore.Register(func(c any) *store.Store { return c.(*Client).store })
}

// Close stops the client's pub/sub listener (if Wait started one). It does not close
// the Redis client, which belongs to the caller.
func (c *Client) Close() error {
	if c.hub != nil {
		return c.hub.close()
	}
	return nil
}

func (c *Client) registerQueue(ctx context.Context, q string) error {
	c.queuesMu.Lock()
	done := c.queues[q]
	c.queuesMu.Unlock()
	if done {
		return nil
	}
	if err := c.store.RegisterQueue(ctx, q); err != nil {
		return err
	}
	c.queuesMu.Lock()
	c.queues[q] = true
	c.queuesMu.Unlock()
	return nil
}

// mapErr turns the store's errors into job's exported ones.
func mapErr(err error, id string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &JobError{ID: id, Err: job.ErrNotFound}
	case errors.Is(err, store.ErrActive):
		return &JobError{ID: id, Err: ErrJobActive}
	case errors.Is(err, store.ErrEnded):
		return &JobError{ID: id, Err: ErrJobEnded}
	}
	return err
}

// Errors of queue operations.
var (
	ErrJobActive = errors.New("chronoq: job is running; it cannot be canceled or deleted (StopJob stops it)")
	ErrJobEnded  = errors.New("chronoq: job has already ended")
)

// JobError names the job an operation failed on.
type JobError struct {
	ID  string
	Err error
}

func (e *JobError) Error() string { return e.Err.Error() + " (job " + e.ID + ")" }
func (e *JobError) Unwrap() error { return e.Err }
