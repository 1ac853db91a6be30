package job

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrBadLimit is wrapped by every error about a rate or a cap on running jobs that is
// out of range or does not parse; it wraps ErrInvalidOption.
var ErrBadLimit = fmt.Errorf("%w: bad limit", ErrInvalidOption)

// ErrBadLimitScope is returned for a limit whose scope is not task, key or queue.
var ErrBadLimitScope = fmt.Errorf("%w: a limit's scope is task, key or queue", ErrBadLimit)

// LimitError names a limit that is out of range or does not parse.
type LimitError struct {
	What   string // "RateLimit", "MaxRunning", ...
	Value  string
	Reason string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("chronoq: bad %s %s: %s", e.What, e.Value, e.Reason)
}

// Unwrap makes errors.Is(err, ErrBadLimit) and errors.Is(err, ErrInvalidOption) true.
func (e *LimitError) Unwrap() error { return ErrBadLimit }

// The bounds of a limit.
const (
	MaxRatePerSecond = 1_000_000 // the fastest rate limit
	MaxBurst         = 1_000_000
	MaxRunningLimit  = 1_000_000 // the largest cap on running jobs
)

// Rate is a token bucket: Count jobs may start per Per, fleet-wide, with at most
// Burst started at once after an idle spell. The zero Rate is no limit.
type Rate struct {
	Count float64
	Per   time.Duration // time.Second, time.Minute or time.Hour
	Burst int
	spec  string
}

// IsZero reports whether r is no limit.
func (r Rate) IsZero() bool { return r.Count == 0 }

// PerSecond is the rate in jobs per second.
func (r Rate) PerSecond() float64 {
	if r.IsZero() {
		return 0
	}
	return r.Count / r.Per.Seconds()
}

// String is the rate as ParseRate reads it: "100/s", "10/m:5" (as written when it
// came from ParseRate and its fields are as parsed).
func (r Rate) String() string {
	if r.IsZero() {
		return ""
	}
	if r.spec != "" {
		if p, err := ParseRate(r.spec); err == nil && p.Count == r.Count && p.Per == r.Per && p.Burst == r.Burst {
			return r.spec
		}
	}
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[r.Per]
	return strconv.FormatFloat(r.Count, 'g', -1, 64) + "/" + unit + ":" + strconv.Itoa(r.Burst)
}

// DefaultBurst is the burst of a rate that names none: 10 ms worth of tokens, at least
// one (Celery's bucket holds one). A burst b lets up to rate + b jobs start in any one
// second; a small one keeps that close to the rate while absorbing the wake-up jitter
// of workers that sleep until the next token.
func DefaultBurst(perSecond float64) int {
	return int(max(1, math.Floor(perSecond*0.01)))
}

// A rate's count is plain decimal ("2.5", not "0x1p4", "1_000" or "+5"), its burst
// plain digits.
var (
	decimal = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$|^\.[0-9]+$`)
	digits  = regexp.MustCompile(`^[0-9]+$`)
)

// ParseRate reads a rate limit: "N/s", "N/m" or "N/h", N a positive number, with an
// optional burst ":B" (1 to MaxBurst): "100/s", "10/m", "100/s:20". The fastest rate
// is MaxRatePerSecond.
func ParseRate(spec string) (Rate, error) {
	bad := func(reason string) (Rate, error) {
		return Rate{}, &LimitError{"RateLimit", strconv.Quote(spec), reason}
	}
	s := strings.TrimSpace(spec)
	body, burst, hasBurst := strings.Cut(s, ":")
	num, unit, ok := strings.Cut(body, "/")
	if !ok {
		return bad(`want N/s, N/m or N/h, with an optional burst ":B" (e.g. "100/s", "10/m:5")`)
	}
	per, ok := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	if !ok {
		return bad(fmt.Sprintf("the unit %q is not s, m or h", unit))
	}
	n, err := strconv.ParseFloat(num, 64)
	if !decimal.MatchString(num) || err != nil || !(n > 0) || math.IsInf(n, 0) {
		return bad(fmt.Sprintf("the count %q is not a positive number", num))
	}
	r := Rate{Count: n, Per: per}
	if r.PerSecond() > MaxRatePerSecond {
		return bad(fmt.Sprintf("is faster than %d/s", MaxRatePerSecond))
	}
	if r.PerSecond()*3600 < 1 {
		return bad("is slower than 1/h")
	}
	r.Burst = DefaultBurst(r.PerSecond())
	if hasBurst {
		b, err := strconv.Atoi(burst)
		if !digits.MatchString(burst) || err != nil || b < 1 || b > MaxBurst {
			return bad(fmt.Sprintf("the burst %q is not a whole number from 1 to %d", burst, MaxBurst))
		}
		r.Burst = b
	}
	r.spec = s
	return r, nil
}

// CheckMaxRunning checks a cap on running jobs: 1 to MaxRunningLimit.
func CheckMaxRunning(n int) error {
	if n < 1 || n > MaxRunningLimit {
		return &LimitError{"MaxRunning", strconv.Itoa(n), fmt.Sprintf("must be from 1 to %d", MaxRunningLimit)}
	}
	return nil
}

// RateLimit limits how fast jobs of a task start across every worker of its queue:
// "100/s", "10/m", "5/h", with an optional burst, "100/s:20" (see ParseRate). It is a
// task's option, declared with NewTask: jobs over the rate wait in their lane, and no
// attempt is spent on them. Workers store it when they start; `chronoq-worker limits
// set` changes it at run time.
func RateLimit(spec string) Option {
	return func(o *Options) error {
		r, err := ParseRate(spec)
		if err != nil {
			return err
		}
		o.RateLimit = r
		return nil
	}
}

// MaxRunning caps how many jobs of a task run at once across every worker of its
// queue (1 for one at a time). It is a task's option, declared with NewTask, like
// RateLimit.
func MaxRunning(n int) Option {
	return func(o *Options) error {
		if err := CheckMaxRunning(n); err != nil {
			return err
		}
		o.MaxRunning = n
		return nil
	}
}

// CheckRate checks a Rate built as a struct rather than by ParseRate (the zero Rate,
// no limit, is fine).
func CheckRate(r Rate) error { return r.validate() }

func (r Rate) validate() error {
	if r.IsZero() {
		return nil
	}
	ps := r.PerSecond()
	switch {
	case r.Per != time.Second && r.Per != time.Minute && r.Per != time.Hour:
		return &LimitError{"RateLimit", r.Per.String(), "the period must be a second, a minute or an hour"}
	case !(r.Count > 0) || math.IsInf(r.Count, 0) || ps > MaxRatePerSecond || ps*3600 < 1:
		return &LimitError{"RateLimit", strconv.FormatFloat(r.Count, 'g', -1, 64), fmt.Sprintf("must be from 1/h to %d/s", MaxRatePerSecond)}
	case r.Burst < 1 || r.Burst > MaxBurst:
		return &LimitError{"RateLimit", strconv.Itoa(r.Burst), fmt.Sprintf("the burst must be from 1 to %d", MaxBurst)}
	}
	return nil
}

// A fleet-wide limit applies to one group of a queue's jobs (docs/limits.md).

// LimitScope says which jobs of a queue a limit counts.
type LimitScope string

// The scopes of a limit.
const (
	ScopeTask  LimitScope = "task"  // the jobs of one task (Limit.Task)
	ScopeKey   LimitScope = "key"   // the jobs of each fair key, every key alike
	ScopeQueue LimitScope = "queue" // every job of the queue
)

// Limit is one fleet-wide limit: at most MaxRunning running at once (0: no cap), and a
// token bucket on starts (zero Rate: none).
type Limit struct {
	Scope      LimitScope
	Task       string // for ScopeTask
	MaxRunning int
	Rate       Rate
	// Declared: set by a task's declaration (a worker's start), not by an operator.
	// An operator's setting wins over declarations until it is cleared.
	Declared bool
}

// LimitUse is a limit with its use now: the jobs it counts running and, with a rate,
// the tokens its bucket holds (refilled to now). A per-key limit has one LimitUse per
// key with jobs running or tokens spent, Key naming it, beside the one with Key "" (the setting).
type LimitUse struct {
	Limit
	Key     string
	Running int
	Tokens  float64
}
