package beat

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chronoq/chronoq/job"
	"github.com/robfig/cron/v3"
)

// ErrInvalidEntry is wrapped by every entry error; the error names the entry.
var ErrInvalidEntry = errors.New("chronoq: invalid beat entry")

// Overlap is what an entry does at a tick while its previous job still waits or runs.
type Overlap string

// CatchUp is what an entry does with ticks missed while every beat was down.
type CatchUp string

// Overlap and catch-up policies.
const (
	OverlapAllow Overlap = "allow" // enqueue anyway (default)
	OverlapSkip  Overlap = "skip"  // skip the tick while the previous job is pending or running

	CatchUpSkip   CatchUp = "skip"   // fire none of the missed ticks (default)
	CatchUpLatest CatchUp = "latest" // fire the latest missed tick once
	CatchUpAll    CatchUp = "all"    // fire every missed tick, oldest first, up to CatchUpLimit
)

// Entry is one recurring job.
type Entry struct {
	Name string `json:"name"`
	// Spec is a cron spec: 5 fields, or 6 with seconds first, or a descriptor such as
	// @daily, @hourly, @every 90s.
	Spec     string `json:"spec"`
	TimeZone string `json:"time_zone,omitempty"` // IANA name; "" is UTC; "Local" is refused
	Task     string `json:"task"`
	Args     []byte `json:"args,omitempty"` // msgpack payload
	Queue    string `json:"queue,omitempty"`
	Priority *int   `json:"priority,omitempty"`
	Retries  *int   `json:"retries,omitempty"`
	// Timeout of each job (0: the default; at most job.MaxTimeout).
	Timeout      time.Duration `json:"timeout,omitempty"`
	Overlap      Overlap       `json:"overlap,omitempty"`
	CatchUp      CatchUp       `json:"catch_up,omitempty"`
	CatchUpLimit int           `json:"catch_up_limit,omitempty"` // for CatchUpAll (default 10, at most 1000)
	Disabled     bool          `json:"disabled,omitempty"`
}

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// schedule is an entry's parsed spec in its time zone.
type schedule struct {
	spec  cron.Schedule
	loc   *time.Location
	every time.Duration // an @every spec's interval (0 for a cron spec)
}

// Next is the first tick after t. Cron specs are evaluated on wall-clock time in the
// entry's zone, and each wall-clock time maps to one instant: a time inside a
// spring-forward gap to the same wall time read at the offset before the gap (02:30
// becomes 03:30 after a 02:00 -> 03:00 jump), a time repeated at a fall-back to its first
// occurrence, or to its second when the first is already past. Constant delays (@every)
// are plain durations.
func (s schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		return s.spec.Next(t)
	}
	w := t.In(s.loc)
	naive := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), time.UTC)
	for i := 0; i < 100; i++ {
		n := s.spec.Next(naive)
		if n.IsZero() {
			return time.Time{}
		}
		if real := s.instant(n, t); !real.IsZero() {
			return real
		}
		naive = n
	}
	return time.Time{}
}

// due picks, of the ticks after from up to now, those to fire (oldest first) and the
// latest of them all (zero when none is due), up to which every tick is done once they
// fire. A tick more than missedAfter late is missed (every beat was down): the catch-up
// policy says which of the missed ones fire; missed tells whether there were any. A
// catch-up limit holds over the whole outage, however long.
func (s schedule) due(from, now time.Time, missedAfter time.Duration, catchUp CatchUp, limit int) (fire []time.Time, latest time.Time, missed bool) {
	// every due tick, keeping the latest ones (a per-second entry down for days has
	// millions)
	var due []time.Time
	for t, n := s.Next(from), 0; !t.IsZero() && !t.After(now) && n < 50_000_000; t, n = s.Next(t), n+1 {
		due = append(due, t)
		if len(due) > 2*maxKept {
			due = append(due[:0], due[len(due)-maxKept:]...)
		}
	}
	if len(due) == 0 {
		return nil, time.Time{}, false
	}
	var old, recent []time.Time
	for _, t := range due {
		if now.Sub(t) > missedAfter {
			old = append(old, t)
		} else {
			recent = append(recent, t)
		}
	}
	fire = recent
	switch catchUp {
	case CatchUpLatest:
		if len(old) > 0 {
			fire = append([]time.Time{old[len(old)-1]}, recent...)
		}
	case CatchUpAll:
		if len(old) > limit {
			old = old[len(old)-limit:]
		}
		fire = append(old, recent...)
	}
	return fire, due[len(due)-1], len(old) > 0
}

// upcoming is the next tick a beat will fire, looking at now: the first after from
// that is not missed.
func (s schedule) upcoming(from, now time.Time, missedAfter time.Duration) time.Time {
	t := s.Next(from)
	for !t.IsZero() && t.Before(now.Add(-missedAfter)) {
		t = s.Next(t) // ticks this far behind are missed, not next
	}
	return t
}

// instant maps wall time n (given in UTC fields) to the first instant after t that
// shows it, or zero if none does.
func (s schedule) instant(n, t time.Time) time.Time {
	real := time.Date(n.Year(), n.Month(), n.Day(), n.Hour(), n.Minute(), n.Second(), 0, s.loc)
	rw := real.In(s.loc)
	if rw.Hour() != n.Hour() || rw.Minute() != n.Minute() || rw.Day() != n.Day() {
		// in a spring-forward gap: read the wall time at the offset before the gap
		_, before := real.Add(-3 * time.Hour).In(s.loc).Zone()
		real = time.Date(n.Year(), n.Month(), n.Day(), n.Hour(), n.Minute(), n.Second(), 0, time.FixedZone("", before))
	}
	if real.After(t) {
		return real.In(s.loc)
	}
	// a fall-back repeats this wall time later: its second occurrence may be after t
	_, after := real.Add(3 * time.Hour).In(s.loc).Zone()
	second := time.Date(n.Year(), n.Month(), n.Day(), n.Hour(), n.Minute(), n.Second(), 0, time.FixedZone("", after))
	if sw := second.In(s.loc); second.After(t) && sw.Hour() == n.Hour() && sw.Minute() == n.Minute() {
		return sw
	}
	return time.Time{}
}

// compile checks e and returns its schedule. Errors name the entry and the field.
func (e *Entry) compile() (schedule, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidEntry, e.Name, fmt.Sprintf(format, a...))
	}
	if e.Name == "" {
		return schedule{}, fmt.Errorf("%w: an entry has no name", ErrInvalidEntry)
	}
	if err := job.ValidateTaskName(e.Task); err != nil {
		return schedule{}, bad("task: %v", err)
	}
	if e.Queue == "" {
		e.Queue = job.DefaultQueue
	}
	if err := job.ValidateQueueName(e.Queue); err != nil {
		return schedule{}, bad("queue: %v", err)
	}
	if e.Priority != nil && (*e.Priority < 0 || *e.Priority > job.MaxPriority) {
		return schedule{}, bad("priority %d is not between 0 and 9", *e.Priority)
	}
	// the job options' own bounds, checked here so that a bad entry is refused when it
	// is loaded, not at each tick
	if e.Retries != nil && (*e.Retries < 0 || *e.Retries > job.MaxRetriesLimit) {
		return schedule{}, bad("retries %d is not between 0 and %d", *e.Retries, job.MaxRetriesLimit)
	}
	if e.Timeout < 0 || e.Timeout > job.MaxTimeout {
		return schedule{}, bad("timeout %s is not between 0 and %s (job.MaxTimeout)", e.Timeout, job.MaxTimeout)
	}
	switch e.Overlap {
	case "":
		e.Overlap = OverlapAllow
	case OverlapAllow, OverlapSkip:
	default:
		return schedule{}, bad("overlap %q (allow or skip)", e.Overlap)
	}
	switch e.CatchUp {
	case "":
		e.CatchUp = CatchUpSkip
	case CatchUpSkip, CatchUpLatest, CatchUpAll:
	default:
		return schedule{}, bad("catch_up %q (skip, latest or all)", e.CatchUp)
	}
	if e.CatchUpLimit < 0 {
		return schedule{}, bad("catch_up_limit %d is negative (0 means 10)", e.CatchUpLimit)
	}
	if e.CatchUpLimit == 0 {
		e.CatchUpLimit = 10
	}
	if e.CatchUpLimit > maxKept {
		return schedule{}, bad("catch_up_limit %d is over %d", e.CatchUpLimit, maxKept)
	}
	if err := job.ValidPayload(e.Args); err != nil {
		return schedule{}, bad("args: %v", err)
	}
	loc := time.UTC // no zone is UTC, the same in every replica
	if strings.EqualFold(e.TimeZone, "Local") {
		// time.LoadLocation takes "Local" for the process's own zone: replicas in
		// different zones would each fire the entry at their own hour
		return schedule{}, bad("time_zone %q is each process's own zone, which differs between replicas: "+
			"give an IANA name such as \"Europe/Berlin\" (or none, for UTC)", e.TimeZone)
	}
	if e.TimeZone != "" {
		l, err := time.LoadLocation(e.TimeZone)
		if err != nil {
			return schedule{}, bad("unknown time zone %q", e.TimeZone)
		}
		loc = l
	}
	if strings.HasPrefix(e.Spec, "CRON_TZ=") || strings.HasPrefix(e.Spec, "TZ=") {
		return schedule{}, bad("cron spec %q: give the zone in time_zone, not in the spec", e.Spec)
	}
	spec, err := parser.Parse(e.Spec)
	if err != nil {
		return schedule{}, bad("cron spec %q: %v", e.Spec, err)
	}
	sc := schedule{spec: spec, loc: loc}
	if cd, ok := spec.(cron.ConstantDelaySchedule); ok {
		sc.every = cd.Delay
	}
	return sc, nil
}

// options are the enqueue options of the entry's jobs.
func (e *Entry) options() []job.Option {
	opts := []job.Option{job.Queue(e.Queue)}
	if e.Priority != nil {
		opts = append(opts, job.Priority(*e.Priority))
	}
	if e.Retries != nil {
		opts = append(opts, job.MaxRetries(*e.Retries))
	}
	if e.Timeout > 0 {
		opts = append(opts, job.Timeout(e.Timeout))
	}
	return opts
}

// NextRun is when e next fires after t (checking e first).
func NextRun(e Entry, t time.Time) (time.Time, error) {
	s, err := e.compile()
	if err != nil {
		return time.Time{}, err
	}
	return s.Next(t), nil
}
