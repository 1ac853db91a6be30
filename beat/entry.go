package beat

import (
	"errors"
	"fmt"
	"maps"
	"slices"
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
	Timeout time.Duration `json:"timeout,omitempty"`
	// Estimate is how long each job will run (job.Estimate; 0: none). Like Cost, it
	// files the job in a size-bucket lane, the same one an enqueue with it would.
	Estimate time.Duration `json:"estimate,omitempty"`
	// Cost holds each job's size hints by name (job.Cost).
	Cost         map[string]float64 `json:"cost,omitempty"`
	Overlap      Overlap            `json:"overlap,omitempty"`
	CatchUp      CatchUp            `json:"catch_up,omitempty"`
	CatchUpLimit int                `json:"catch_up_limit,omitempty"` // for CatchUpAll (default 10, at most 1000)
	Disabled     bool               `json:"disabled,omitempty"`
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
// policy says which of the missed ones fire (none, the latest, or the latest limit);
// missed tells whether there were any. Of the ticks not missed, the latest maxKept
// fire.
//
// The work is in proportion to the ticks that fire, however long the outage: only the
// ticks that can fire are walked (see latest), never every missed tick.
func (s schedule) due(from, now time.Time, missedAfter time.Duration, catchUp CatchUp, limit int) (fire []time.Time, latest time.Time, missed bool) {
	keep := 0
	switch catchUp {
	case CatchUpLatest:
		keep = 1
	case CatchUpAll:
		keep = limit
	}
	// a tick is missed when now.Sub(tick) > missedAfter: at or before lastMissed
	lastMissed := now.Add(-missedAfter).Add(-time.Nanosecond)
	recent := s.latest(from, maxTime(from, lastMissed), now, maxKept)
	var old []time.Time
	if lastMissed.After(from) {
		old = s.latest(from, from, lastMissed, max(keep, 1)) // one at least: it may be the latest due
	}
	switch {
	case len(recent) > 0:
		latest = recent[len(recent)-1]
	case len(old) > 0:
		latest = old[len(old)-1]
	}
	missed = len(old) > 0
	if len(old) > keep {
		old = old[len(old)-keep:]
	}
	return append(old, recent...), latest, missed
}

// upcoming is the next tick a beat will fire, looking at now: the first after from
// that is not missed.
func (s schedule) upcoming(from, now time.Time, missedAfter time.Duration) time.Time {
	lastMissed := now.Add(-missedAfter).Add(-time.Nanosecond)
	if !lastMissed.After(from) {
		return s.Next(from)
	}
	if s.every > 0 {
		first := s.Next(from)
		if first.IsZero() || first.After(lastMissed) {
			return first
		}
		return first.Add((lastMissed.Sub(first)/s.every + 1) * s.every)
	}
	t := s.Next(maxTime(from, s.settled(lastMissed)))
	for !t.IsZero() && !t.After(lastMissed) {
		t = s.Next(t)
	}
	return t
}

// latest returns the last k of the ticks after from (the walk from from: each the
// Next of the one before) that fall after lo and up to hi, oldest first; lo is not
// before from. It walks from from only while that is cheap, then from ever earlier
// points before hi, each twice as far back, until k ticks are found: the work is in
// proportion to k, not to the ticks between from and hi.
func (s schedule) latest(from, lo, hi time.Time, k int) []time.Time {
	if k <= 0 || !hi.After(lo) {
		return nil
	}
	if s.every > 0 { // @every: the ticks are from's first one plus whole intervals
		first := s.Next(from)
		if first.IsZero() || first.After(hi) {
			return nil
		}
		j0, j1 := time.Duration(0), hi.Sub(first)/s.every // first and last tick in (lo, hi]
		if !first.After(lo) {
			j0 = lo.Sub(first)/s.every + 1
		}
		j0 = max(j0, j1-time.Duration(k)+1)
		var out []time.Time
		for j := j0; j <= j1; j++ {
			out = append(out, first.Add(j*s.every))
		}
		return out
	}
	budget := 4*k + 64
	start := maxTime(from, s.settled(lo))
	ticks, done, reached := s.walk(start, lo, hi, k, budget)
	if done {
		return ticks
	}
	// a window before hi sized for k ticks by the density the walk met, doubled
	// until it holds k ticks or reaches lo
	span := max(time.Second, reached.Sub(start)/time.Duration(budget)*time.Duration(k))
	for {
		whole := span >= hi.Sub(lo)
		p := lo
		if !whole {
			p = hi.Add(-span)
		}
		p = maxTime(from, s.settled(p))
		got, _, _ := s.walk(p, lo, hi, k, 0)
		if whole || len(got) >= k || !p.After(lo) {
			return got
		}
		if span > hi.Sub(lo)/2 {
			span = hi.Sub(lo)
		} else {
			span *= 2
		}
	}
}

// walk walks the ticks from p (a tick of the walk from from, or a settled instant),
// keeping the last k of those after lo, up to hi or for budget steps (0: no bound).
// done tells whether it reached hi; reached is the tick it stopped at.
func (s schedule) walk(p, lo, hi time.Time, k, budget int) (ticks []time.Time, done bool, reached time.Time) {
	t := s.Next(p)
	for n := 1; !t.IsZero() && !t.After(hi); n++ {
		if budget > 0 && n > budget {
			return lastOf(ticks, k), false, t
		}
		if t.After(lo) {
			ticks = append(ticks, t)
			if len(ticks) > 2*k {
				ticks = append(ticks[:0], ticks[len(ticks)-k:]...)
			}
		}
		t = s.Next(t)
	}
	return lastOf(ticks, k), true, t
}

// settled moves p back out of the moments around a change of the zone's offset, where
// a walk from p would not meet the ticks that a walk through the change meets: a walk
// maps the wall times of a spring-forward gap to just after it, and fires each wall
// time of a repeated hour once. From a settled instant, Next gives the tick that a walk
// from any earlier tick gives.
func (s schedule) settled(p time.Time) time.Time {
	for range 8 {
		w := p.In(s.loc)
		start, end := w.ZoneBounds()
		_, off := w.Zone()
		if !start.IsZero() { // just after a change
			_, before := start.Add(-time.Nanosecond).In(s.loc).Zone()
			if p.Sub(start) < offsetShift(off, before) {
				p = start.Add(-time.Nanosecond)
				continue
			}
		}
		if !end.IsZero() { // just before one
			_, after := end.In(s.loc).Zone()
			if d := offsetShift(off, after); end.Sub(p) <= d {
				p = end.Add(-d - time.Nanosecond)
				continue
			}
		}
		return p
	}
	return p
}

// offsetShift is the size of a change between two zone offsets (seconds east of UTC).
func offsetShift(a, b int) time.Duration {
	return time.Duration(max(a-b, b-a)) * time.Second
}

func lastOf(ts []time.Time, k int) []time.Time {
	if len(ts) > k {
		return ts[len(ts)-k:]
	}
	return ts
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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
	if e.Estimate < 0 {
		return schedule{}, bad("estimate %s is negative (0 means none)", e.Estimate)
	}
	if e.Estimate > 0 || len(e.Cost) > 0 { // job.Estimate's and job.Cost's own bounds
		if _, err := job.DefaultOptions().Apply(e.options()...); err != nil {
			return schedule{}, bad("%v", err)
		}
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
	if e.Estimate > 0 {
		opts = append(opts, job.Estimate(e.Estimate))
	}
	for _, name := range slices.Sorted(maps.Keys(e.Cost)) {
		opts = append(opts, job.Cost(name, e.Cost[name]))
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
