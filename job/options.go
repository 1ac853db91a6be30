package job

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chronoq/chronoq/ranking/fairshare"
)

// Defaults for options a job does not set. They follow Celery's and RQ's where those
// agree, and are written into every job's record so a worker with other defaults
// still runs the job as its producer meant.
const (
	DefaultQueue     = "default"
	DefaultPriority  = 5 // the middle band, so a job can be made both more and less urgent
	DefaultRetries   = 3
	DefaultTimeout   = 30 * time.Minute
	DefaultRetention = 10 * time.Minute // how long a succeeded job and its result stay readable
	// (records store timeout and retention against fixed bases, not these defaults, so
	// changing a default never changes a stored job)
	MaxPriority     = 9
	MaxHorizon      = 10 * 365 * 24 * time.Hour // the furthest In, At, Estimate and SkipIfLate go
	MaxRetriesLimit = 1000
)

// Upper bounds of the durations a worker adds to a clock or to another duration (a
// timeout plus the worker's grace, now plus a backoff): without them a huge value wraps
// around int64 and fires at once. Celery, asynq and River set no limit, so the bounds
// are far above any real setting; a caller that means "no limit" writes the constant.
const (
	// MaxTimeout is the longest Timeout: a year. A job that may run longer belongs in
	// a workflow engine, or should checkpoint and enqueue its next step.
	MaxTimeout = 365 * 24 * time.Hour
	// MaxRetention is the longest Retention: a year (Celery keeps results a day by
	// default, River completed jobs a day); results kept longer belong in a database.
	MaxRetention = 365 * 24 * time.Hour
	// MaxBackoff is the longest Backoff.Base and Backoff.Max, and caps every delay
	// Backoff.Delay returns: 30 days (Sidekiq's 25 retries span about 21 days).
	MaxBackoff = 30 * 24 * time.Hour
)

// DefaultBackoff is exponential from 2s, doubling, capped at 10 minutes, with up to half
// of each delay taken off at random so retries of a burst spread out.
var DefaultBackoff = Backoff{Base: 2 * time.Second, Factor: 2, Max: 10 * time.Minute, Jitter: 0.5}

// Backoff is the delay policy between attempts: Base × Factor^(attempt-1), capped at
// Max (at MaxBackoff when Max is 0), then reduced by a random fraction of up to Jitter
// (0..1).
type Backoff struct {
	Base   time.Duration `msgpack:"b"`
	Factor float64       `msgpack:"f"`
	Max    time.Duration `msgpack:"m"`
	Jitter float64       `msgpack:"j"`
}

// ExponentialBackoff doubles from base up to max, with the default jitter.
func ExponentialBackoff(base, max time.Duration) Backoff {
	return Backoff{Base: base, Factor: 2, Max: max, Jitter: DefaultBackoff.Jitter}
}

// ConstantBackoff waits d between attempts, without jitter.
func ConstantBackoff(d time.Duration) Backoff { return Backoff{Base: d, Factor: 1, Max: d} }

// Delay is the wait before attempt+1, given that attempt (1-based) has just failed.
// random returns a float in [0,1); nil means math/rand.
func (b Backoff) Delay(attempt int, random func() float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := float64(b.Base) * math.Pow(b.Factor, float64(attempt-1))
	// capped in float64: a late attempt's delay overflows int64 (or is NaN from 0×Inf)
	// and would convert to a negative duration, a retry at once
	limit := MaxBackoff
	if b.Max > 0 && b.Max < limit {
		limit = b.Max
	}
	if !(d <= float64(limit)) {
		d = float64(limit)
	}
	if b.Jitter > 0 {
		if random == nil {
			random = rand.Float64
		}
		d -= d * b.Jitter * random()
	}
	return time.Duration(d)
}

func (b Backoff) validate() error {
	// the float checks are written so that NaN, which fails every comparison, fails them
	switch {
	case b.Base < 0 || b.Base > MaxBackoff:
		return &OptionError{"Backoff.Base", b.Base, "must be between 0 and " + MaxBackoff.String() + " (MaxBackoff)"}
	case !(b.Factor >= 1) || math.IsInf(b.Factor, 1):
		return &OptionError{"Backoff.Factor", b.Factor, "must be a finite number, at least 1"}
	case b.Max < 0 || b.Max > MaxBackoff:
		return &OptionError{"Backoff.Max", b.Max, "must be between 0 and " + MaxBackoff.String() + " (MaxBackoff)"}
	case !(b.Jitter >= 0 && b.Jitter <= 1):
		return &OptionError{"Backoff.Jitter", b.Jitter, "must be between 0 and 1"}
	}
	return nil
}

// Options are a job's settings, resolved from its task's options, then the enqueue
// call's. Build them with the Option funcs; the zero value is not valid, use
// DefaultOptions.
type Options struct {
	Queue      string
	Priority   int // 0..9, 9 runs first; bands are strict
	MaxRetries int // attempts after the first; 0 means run once
	Backoff    Backoff
	Timeout    time.Duration // the job's context deadline; the worker frees the slot a little later
	Retention  time.Duration // how long a succeeded job and its result stay; 0 deletes at once
	Delay      time.Duration // run no earlier than enqueue time + Delay (In)
	At         time.Time     // run no earlier than At; wins over Delay
	Cost       map[string]float64
	// Estimate is the caller's own prediction of the run time (0: none). Outside fifo
	// mode it replaces the learned prediction for this job (an oracle in benchmarks;
	// a caller that knows better in production).
	Estimate time.Duration
	// Key is a schedule key (e.g. "auto-punch-out:employee:42"), unique per queue among
	// jobs that have not started: enqueueing again with the same key replaces the
	// waiting job, or keeps it when KeepExisting is set.
	Key          string
	KeepExisting bool
	// FairKey names the job's source (a tenant, a customer, a batch import) for fair
	// share between sources; "" is the default key every unkeyed job shares. With a
	// queue's fairness off (the default) it is kept and shown, and the order is as
	// without it.
	FairKey string
	// LateBy, when positive, skips the job if it starts more than LateBy after its due
	// time (after an outage, say): it fails with ErrLate instead of running late.
	LateBy time.Duration
	// RejectPast makes an At in the past an error instead of "run at once".
	RejectPast bool
	// RateLimit and MaxRunning are a task's fleet-wide limits (declared with NewTask;
	// see RateLimit): the zero values are none.
	RateLimit  Rate
	MaxRunning int
}

// DefaultOptions returns the options of a job that sets none.
func DefaultOptions() Options {
	return Options{
		Queue:      DefaultQueue,
		Priority:   DefaultPriority,
		MaxRetries: DefaultRetries,
		Backoff:    DefaultBackoff,
		Timeout:    DefaultTimeout,
		Retention:  DefaultRetention,
	}
}

// Option sets one enqueue option. Options are checked when the job is enqueued; an
// out-of-range value is an *OptionError that names it.
type Option func(*Options) error

// Apply resolves opts over o and validates the result.
func (o Options) Apply(opts ...Option) (Options, error) {
	if o.Cost != nil { // never share the map with the caller's
		c := make(map[string]float64, len(o.Cost))
		for k, v := range o.Cost {
			c[k] = v
		}
		o.Cost = c
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, o.Validate()
}

// Validate checks every field and returns the first one out of range.
func (o Options) Validate() error {
	if err := ValidateQueueName(o.Queue); err != nil {
		return err
	}
	switch {
	case o.Priority < 0 || o.Priority > MaxPriority:
		return &OptionError{"Priority", o.Priority, "must be between 0 and 9 (9 runs first)"}
	case o.MaxRetries < 0 || o.MaxRetries > MaxRetriesLimit:
		return &OptionError{"MaxRetries", o.MaxRetries, fmt.Sprintf("must be between 0 and %d", MaxRetriesLimit)}
	}
	// checked again here for Options built as a struct, not with the Option funcs
	for _, err := range []error{checkTimeout(o.Timeout), checkRetention(o.Retention),
		checkLateBy(o.LateBy, true), checkEstimate(o.Estimate, true)} {
		if err != nil {
			return err
		}
	}
	switch {
	case o.Delay < 0:
		return &OptionError{"In", o.Delay, "must not be negative"}
	case o.Delay > MaxHorizon:
		return &OptionError{"In", o.Delay, "is more than 10 years ahead"}
	}
	if o.FairKey != "" {
		if err := ValidateFairKey(o.FairKey); err != nil {
			return err
		}
	}
	if o.MaxRunning != 0 {
		if err := CheckMaxRunning(o.MaxRunning); err != nil {
			return err
		}
	}
	if err := o.RateLimit.validate(); err != nil {
		return err
	}
	for k, v := range o.Cost {
		if k == "" || strings.ContainsAny(k, "|\n") || math.IsNaN(v) || math.IsInf(v, 0) {
			return &OptionError{"Cost", fmt.Sprintf("%q=%v", k, v), "needs a name (no '|') and a finite value"}
		}
	}
	return o.Backoff.validate()
}

// DueAt is when a job enqueued at now may first run; the zero time means at once.
func (o Options) DueAt(now time.Time) (time.Time, error) {
	due := time.Time{}
	if !o.At.IsZero() {
		due = o.At
	} else if o.Delay > 0 {
		due = now.Add(o.Delay)
	}
	if !due.IsZero() && due.Sub(now) > MaxHorizon {
		return time.Time{}, &OptionError{"At", due.UTC().Format(time.RFC3339), "is more than 10 years ahead"}
	}
	if !due.After(now) {
		if o.RejectPast && !o.At.IsZero() && o.At.Before(now) {
			return time.Time{}, &OptionError{"At", o.At.UTC().Format(time.RFC3339Nano), "is in the past (RejectPast)"}
		}
		return time.Time{}, nil // in the past or now: runs at once
	}
	return due.UTC(), nil
}

// Queue puts the job on the named queue.
func Queue(name string) Option {
	return func(o *Options) error {
		if err := ValidateQueueName(name); err != nil {
			return err
		}
		o.Queue = name
		return nil
	}
}

// Priority sets the band, 0 (last) to 9 (first).
func Priority(p int) Option {
	return func(o *Options) error {
		if p < 0 || p > MaxPriority {
			return &OptionError{"Priority", p, "must be between 0 and 9 (9 runs first)"}
		}
		o.Priority = p
		return nil
	}
}

// MaxRetries sets how many times a failed job runs again; 0 runs it once.
func MaxRetries(n int) Option {
	return func(o *Options) error {
		if n < 0 || n > MaxRetriesLimit {
			return &OptionError{"MaxRetries", n, fmt.Sprintf("must be between 0 and %d", MaxRetriesLimit)}
		}
		o.MaxRetries = n
		return nil
	}
}

// WithBackoff sets the delay policy between attempts.
func WithBackoff(b Backoff) Option {
	return func(o *Options) error {
		if err := b.validate(); err != nil {
			return err
		}
		o.Backoff = b
		return nil
	}
}

// Timeout bounds one attempt, up to MaxTimeout; the task's context is canceled when it
// passes.
func Timeout(d time.Duration) Option {
	return func(o *Options) error {
		if err := checkTimeout(d); err != nil {
			return err
		}
		o.Timeout = d
		return nil
	}
}

func checkTimeout(d time.Duration) error {
	if d <= 0 || d > MaxTimeout {
		return &OptionError{"Timeout", d, "must be positive and at most " + MaxTimeout.String() + " (MaxTimeout, a year)"}
	}
	return nil
}

// Retention keeps a succeeded job and its result readable for d (0: delete at once), up
// to MaxRetention.
func Retention(d time.Duration) Option {
	return func(o *Options) error {
		if err := checkRetention(d); err != nil {
			return err
		}
		o.Retention = d
		return nil
	}
}

func checkRetention(d time.Duration) error {
	if d < 0 || d > MaxRetention {
		return &OptionError{"Retention", d, "must be between 0 and " + MaxRetention.String() + " (MaxRetention, a year)"}
	}
	return nil
}

// In delays the job by d.
func In(d time.Duration) Option {
	return func(o *Options) error {
		if d < 0 {
			return &OptionError{"In", d, "must not be negative"}
		}
		if d > MaxHorizon {
			return &OptionError{"In", d, "is more than 10 years ahead"}
		}
		o.Delay = d
		return nil
	}
}

// At runs the job no earlier than t (a time in the past runs at once).
func At(t time.Time) Option {
	return func(o *Options) error {
		if t.IsZero() {
			return &OptionError{"At", t, "is the zero time"}
		}
		o.At = t
		return nil
	}
}

// Cost records a numeric hint about the job's size (bytes, items, ...). The learned
// order uses such hints to refine its prediction inside a task type.
func Cost(name string, value float64) Option {
	return func(o *Options) error {
		if name == "" || strings.ContainsAny(name, "|\n") || math.IsNaN(value) || math.IsInf(value, 0) {
			return &OptionError{"Cost", fmt.Sprintf("%q=%v", name, value), "needs a name (no '|') and a finite value"}
		}
		if o.Cost == nil {
			o.Cost = map[string]float64{}
		}
		o.Cost[name] = value
		return nil
	}
}

// Key makes the job keyed: at most one job with this key waits (scheduled or pending)
// in its queue. Enqueueing again with the same key replaces the waiting one (see
// KeepExisting); the key also cancels and finds the job.
func Key(key string) Option {
	return func(o *Options) error {
		if err := ValidateKey(key); err != nil {
			return err
		}
		o.Key = key
		return nil
	}
}

// MaxFairKeyLen is the longest fair key, in bytes.
const MaxFairKeyLen = 128

// FairKey tags the job with its source (a tenant, a customer, a bulk import) for fair
// share between the sources of one queue: jobs without one share the default key.
// With the queue's fairness off, the default, the key is kept with the job and shown
// (the job's view, the dashboard), and the order is as without it.
func FairKey(key string) Option {
	return func(o *Options) error {
		if err := ValidateFairKey(key); err != nil {
			return err
		}
		o.FairKey = key
		return nil
	}
}

// ValidateFairKey checks a fair key: 1 to MaxFairKeyLen bytes of UTF-8, without
// control or format characters.
func ValidateFairKey(key string) error {
	if key == "" || len(key) > MaxFairKeyLen {
		return &OptionError{"FairKey", fmt.Sprintf("%q", key), fmt.Sprintf("must be 1 to %d bytes", MaxFairKeyLen)}
	}
	if !printableKey(key) {
		return &OptionError{"FairKey", fmt.Sprintf("%q", key), "must be UTF-8 without control or format characters"}
	}
	if key == fairshare.DefaultKeyName {
		return &OptionError{"FairKey", fmt.Sprintf("%q", key), "is reserved: it names the key of jobs without one"}
	}
	return nil
}

// KeepExisting makes a keyed enqueue keep the job already waiting under its key (and
// return it) instead of replacing it.
func KeepExisting() Option {
	return func(o *Options) error {
		o.KeepExisting = true
		return nil
	}
}

// RejectPast makes At with a time in the past an error, instead of running the job at
// once.
func RejectPast() Option {
	return func(o *Options) error {
		o.RejectPast = true
		return nil
	}
}

// SkipIfLate skips the job when it starts more than d after its due time (the time it
// was enqueued for): a catch-up policy for jobs that are pointless late. Without it a
// late job runs as soon as it can. d is 1ms to MaxHorizon.
func SkipIfLate(d time.Duration) Option {
	return func(o *Options) error {
		if err := checkLateBy(d, false); err != nil {
			return err
		}
		o.LateBy = d
		return nil
	}
}

// checkLateBy checks a SkipIfLate; unset (0) is valid in resolved Options only.
func checkLateBy(d time.Duration, unsetOK bool) error {
	if (d == 0 && unsetOK) || d >= time.Millisecond && d <= MaxHorizon {
		return nil
	}
	return &OptionError{"SkipIfLate", d, "must be at least 1ms and at most 10 years (MaxHorizon)"}
}

// ValidateKey checks a schedule key: 1 to 512 bytes of UTF-8, without control or
// format characters.
func ValidateKey(key string) error {
	if key == "" || len(key) > 512 {
		return &OptionError{"Key", fmt.Sprintf("%q", key), "must be 1 to 512 bytes"}
	}
	if !printableKey(key) {
		return &OptionError{"Key", fmt.Sprintf("%q", key), "must be UTF-8 without control or format characters"}
	}
	return nil
}

// printableKey reports whether key is valid UTF-8 without control characters (C0, C1,
// DEL), line or paragraph separators, or format characters (bidirectional marks,
// zero-width ones): a key shown in a listing must read as what it is, and be typed back.
func printableKey(key string) bool {
	if !utf8.ValidString(key) {
		return false
	}
	for _, r := range key {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf) {
			return false
		}
	}
	return true
}

// Estimate states how long the job will run, overriding the learned prediction.
func Estimate(d time.Duration) Option {
	return func(o *Options) error {
		if err := checkEstimate(d, false); err != nil {
			return err
		}
		o.Estimate = d
		return nil
	}
}

// checkEstimate checks an Estimate; unset (0) is valid in resolved Options only.
func checkEstimate(d time.Duration, unsetOK bool) error {
	if (d == 0 && unsetOK) || d > 0 && d <= MaxHorizon {
		return nil
	}
	return &OptionError{"Estimate", d, "must be positive and at most 10 years (MaxHorizon)"}
}

// CostNames returns the cost hint names in a stable order.
func (o Options) CostNames() []string {
	names := make([]string, 0, len(o.Cost))
	for k := range o.Cost {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
