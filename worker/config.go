package worker

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/chronoq/chronoq/internal/store"
	"github.com/chronoq/chronoq/job"
)

// QueueConfig is one queue a worker serves.
type QueueConfig struct {
	Name string
	// Weight is the queue's share of fetches when Config.Strict is false (default 1, at
	// most MaxWeight).
	Weight int
	// Concurrency caps this queue's running jobs within the worker (0: no cap beyond
	// Config.Concurrency; at most MaxConcurrency).
	Concurrency int
}

// Config configures a Worker. Only Queues is usually set; the rest has defaults. Zero
// means a field's default; numbers and durations have upper bounds (MaxWeight,
// MaxConcurrency, MaxBatchSize, MaxConfigDuration), and New refuses a value outside them.
type Config struct {
	// Queues to serve (default: the "default" queue).
	Queues []QueueConfig
	// Strict takes jobs from Queues in their order: a later queue only when the earlier
	// ones are empty. Otherwise each fetch tries queues in a random order drawn by weight.
	Strict bool
	// Concurrency is how many jobs run at once (default 10, at most MaxConcurrency).
	// With Autoscale on it is the ceiling, Autoscale.Max: leave it 0.
	Concurrency int
	// Autoscale, when set, lets the worker vary its job slots between Autoscale.Min and
	// Autoscale.Max as its work asks, by a stated rule (see Autoscale). Defaults to off:
	// Concurrency slots.
	Autoscale Autoscale
	// BatchSize caps the jobs taken in one fetch (default Concurrency up to 100; at
	// most MaxBatchSize, 1000).
	// A worker never takes more jobs than it has free slots.
	BatchSize int
	// Lease is how long a fetched job is held without renewal (default 30s); a crashed
	// worker's jobs run again within about one lease.
	Lease time.Duration
	// ShutdownTimeout is how long Stop lets running jobs finish before handing them
	// back to pending (default 30s).
	ShutdownTimeout time.Duration
	// HardDeadlineGrace is how long past its timeout, or past a request to stop it
	// (queue.Client.StopJob), a job that ignores its context may run before the worker
	// ends it and frees its slot (default 5s).
	HardDeadlineGrace time.Duration
	// IdleBlock is the longest a worker blocks waiting for work before checking again
	// (default 5s, at least 1s: BLPOP's unit). Work normally wakes it at once; this
	// bounds a lost wake-up.
	IdleBlock time.Duration
	// HeartbeatInterval (default 5s); the worker is shown as gone after 3 missed beats.
	HeartbeatInterval time.Duration
	// NodeDeadline, on a Redis Cluster, is how long one call to one queue's master may
	// take before the worker serves its other queues without that one (default 100ms;
	// 10ms to 10s, and at most a quarter of Lease). A queue whose master fails or is slower than this is left out of
	// fetches, idle waits and hand-offs, and probed until its master answers again;
	// acknowledgements, renewals and the reaper work on each queue apart, so one
	// master's trouble never holds another queue's jobs. Unused on one server, where
	// every queue shares the node's fate.
	NodeDeadline time.Duration
	// ID names the worker (default host-pid-random). It may not hold '|', which
	// separates the fields of the entries that name a worker in Redis (a job's owner,
	// an idle worker).
	ID string
	// MaxResult is the largest result a job may return, in bytes once encoded (default
	// DefaultMaxResult, 512 KiB, as queue.Config.MaxPayload; at most MaxResultLimit). A
	// job whose result is larger fails without a retry, with an error naming the size
	// and the limit: Redis refuses a value past its proto-max-bulk-len, and the job's
	// acknowledgement would fail, run after run, until its retries were spent.
	MaxResult int
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Random returns floats in [0,1) for backoff jitter (default math/rand); tests fix it.
	Random func() float64
	// Observer, when set, is told of every attempt the worker decides: its queue, task,
	// run time, wait from due to start and outcome. prommetrics.New (package
	// worker/prommetrics) makes one that feeds Prometheus histograms and counters,
	// served by chronoq-worker run --metrics-addr. Defaults to none, which costs
	// nothing and links no metrics library.
	Observer Observer
}

// Bounds of the numeric settings. Far above what one process uses, they keep what is
// computed from them in range: the fetch loop sums the weights, New sizes a buffer by
// Concurrency, the lease and heartbeat loops multiply and add their intervals.
const (
	MaxWeight      = 1_000_000 // QueueConfig.Weight
	MaxConcurrency = 10_000    // Config.Concurrency and QueueConfig.Concurrency
	MaxBatchSize   = store.MaxFetch
	// MaxConfigDuration bounds every duration of Config: Lease, ShutdownTimeout,
	// HardDeadlineGrace, IdleBlock, HeartbeatInterval (and MaxNodeDeadline NodeDeadline).
	MaxConfigDuration = 24 * time.Hour
	MaxNodeDeadline   = 10 * time.Second
	// DefaultMaxResult is Config.MaxResult's default: 512 KiB, the payload limit's.
	DefaultMaxResult = 512 << 10
	// MaxResultLimit bounds Config.MaxResult: 4 MiB. The worker acknowledges up to 256
	// jobs in one script call, and 256 results of 4 MiB fill Redis' default client
	// query buffer (1 GB). Larger results belong in a blob store, the job returning
	// their key.
	MaxResultLimit = 4 << 20
)

// Validate checks cfg as New does, without filling in its defaults: a command line
// checks its flags with it before it connects to Redis. Zero means the default; a
// negative or too large value is an error that names the setting and the value.
func (c Config) Validate() error {
	seen := map[string]bool{}
	for i, q := range c.Queues {
		if err := job.ValidateQueueName(q.Name); err != nil {
			return fmt.Errorf("worker: Queues[%d]: %w", i, err)
		}
		if seen[q.Name] {
			return fmt.Errorf("worker: queue %q is listed twice", q.Name)
		}
		seen[q.Name] = true
		if q.Weight < 0 || q.Weight > MaxWeight {
			return fmt.Errorf("worker: queue %q: weight %d is out of range (0 to %d; 0 means 1)", q.Name, q.Weight, MaxWeight)
		}
		if q.Concurrency < 0 || q.Concurrency > MaxConcurrency {
			return fmt.Errorf("worker: queue %q: concurrency %d is out of range (0 to %d; 0 means no cap of its own)", q.Name, q.Concurrency, MaxConcurrency)
		}
	}
	if c.Concurrency < 0 || c.Concurrency > MaxConcurrency {
		return fmt.Errorf("worker: Concurrency %d is out of range (0 to %d; 0 means 10)", c.Concurrency, MaxConcurrency)
	}
	if err := c.Autoscale.validate(c.Concurrency); err != nil {
		return err
	}
	if c.BatchSize < 0 || c.BatchSize > MaxBatchSize {
		return fmt.Errorf("worker: BatchSize %d is out of range (0 to %d; 0 means Concurrency, up to 100)", c.BatchSize, MaxBatchSize)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Lease", c.Lease}, {"ShutdownTimeout", c.ShutdownTimeout}, {"HardDeadlineGrace", c.HardDeadlineGrace},
		{"IdleBlock", c.IdleBlock}, {"HeartbeatInterval", c.HeartbeatInterval}} {
		if d.v < 0 || d.v > MaxConfigDuration {
			return fmt.Errorf("worker: %s %s is out of range (0 to %s; 0 means the default)", d.name, d.v, MaxConfigDuration)
		}
	}
	if c.NodeDeadline < 0 || c.NodeDeadline > MaxNodeDeadline || (c.NodeDeadline > 0 && c.NodeDeadline < 10*time.Millisecond) {
		return fmt.Errorf("worker: NodeDeadline %s is out of range (10ms to %s; 0 means 100ms)", c.NodeDeadline, MaxNodeDeadline)
	}
	if c.Lease != 0 && c.Lease < 100*time.Millisecond {
		return fmt.Errorf("worker: Lease %s is too short (at least 100ms)", c.Lease)
	}
	if c.MaxResult < 0 || c.MaxResult > MaxResultLimit {
		return fmt.Errorf("worker: MaxResult %d is out of range (0 to %d bytes; 0 means %d)", c.MaxResult, MaxResultLimit, DefaultMaxResult)
	}
	if strings.Contains(c.ID, "|") {
		return fmt.Errorf("worker: ID %q holds '|', which separates the fields of a job's owner entry in Redis", c.ID)
	}
	return nil
}

func (c *Config) defaults() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if len(c.Queues) == 0 {
		c.Queues = []QueueConfig{{Name: job.DefaultQueue}}
	}
	for i := range c.Queues {
		if c.Queues[i].Weight == 0 {
			c.Queues[i].Weight = 1
		}
	}
	if c.Autoscale.on() {
		c.Concurrency = c.Autoscale.Max // what buffers and the runners are sized by
	}
	if c.Concurrency == 0 {
		c.Concurrency = 10
	}
	if c.BatchSize == 0 {
		c.BatchSize = min(c.Concurrency, 100)
	}
	setDur(&c.Lease, 30*time.Second)
	setDur(&c.ShutdownTimeout, 30*time.Second)
	setDur(&c.HardDeadlineGrace, 5*time.Second)
	setDur(&c.IdleBlock, 5*time.Second)
	setDur(&c.HeartbeatInterval, 5*time.Second)
	setDur(&c.NodeDeadline, 100*time.Millisecond)
	// a job a late fetch starts must keep most of its lease before the first renewal
	c.NodeDeadline = max(min(c.NodeDeadline, c.Lease/4), 10*time.Millisecond)
	c.IdleBlock = max(c.IdleBlock.Round(time.Second), time.Second)
	if c.MaxResult == 0 {
		c.MaxResult = DefaultMaxResult
	}
	if c.ID == "" {
		host, _ := os.Hostname()
		c.ID = fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), rand.IntN(1<<16))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Random == nil {
		c.Random = rand.Float64
	}
	return nil
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}
