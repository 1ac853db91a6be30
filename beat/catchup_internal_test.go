package beat

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// countingSpec counts the Next calls of the spec it wraps: the work of choosing ticks,
// independent of time. Past limit it ends the walk (a zero time), so a walk over
// every tick of a long outage fails fast instead of running for minutes.
type countingSpec struct {
	cron.Schedule
	n, limit *int
}

func (c countingSpec) Next(t time.Time) time.Time {
	*c.n++
	if *c.n > *c.limit {
		return time.Time{}
	}
	return c.Schedule.Next(t)
}

func mustSchedule(t *testing.T, spec, zone string) schedule {
	t.Helper()
	e := Entry{Name: "e", Spec: spec, TimeZone: zone, Task: "t"}
	s, err := e.compile()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLongOutageBoundedWork: after a year with every beat down, choosing the ticks of
// an entry takes work in proportion to the ticks that fire (the catch-up limit, and the
// last minute's ticks), not to the 31 million ticks a per-second entry missed.
func TestLongOutageBoundedWork(t *testing.T) {
	from := time.Date(2026, 1, 5, 12, 0, 0, 500_000_000, time.UTC) // the last tick done
	now := from.AddDate(1, 0, 0)
	cases := []struct {
		spec, zone string
		catchUp    CatchUp
		limit      int
		fired      int // missed ticks fired + the last minute's ticks
	}{
		{"@every 1s", "", CatchUpSkip, 10, 0 + 60},
		{"@every 1s", "", CatchUpLatest, 10, 1 + 60},
		{"@every 1s", "", CatchUpAll, 10, 10 + 60},
		{"@every 1s", "America/New_York", CatchUpAll, 1000, 1000 + 60},
		{"* * * * * *", "", CatchUpSkip, 10, 0 + 60},
		{"* * * * * *", "", CatchUpLatest, 10, 1 + 60},
		{"* * * * * *", "America/New_York", CatchUpAll, 10, 10 + 60},
		{"* * * * * *", "Europe/Berlin", CatchUpAll, 1000, 1000 + 60},
		{"*/10 * * * *", "Europe/Berlin", CatchUpAll, 1000, 1000 + 1},
		{"30 2 * * *", "America/New_York", CatchUpAll, 1000, 365},
		{"30 2 * * *", "America/New_York", CatchUpSkip, 10, 0},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %s %s %d", tc.spec, tc.zone, tc.catchUp, tc.limit), func(t *testing.T) {
			s := mustSchedule(t, tc.spec, tc.zone)
			keep := map[CatchUp]int{CatchUpSkip: 0, CatchUpLatest: 1, CatchUpAll: tc.limit}[tc.catchUp]
			bound := 10*(keep+61) + 300
			n := 0
			counted := s
			counted.spec = countingSpec{s.spec, &n, &bound}
			fire, latest, missed := counted.due(from, now, time.Minute, tc.catchUp, tc.limit)
			if n > bound {
				t.Fatalf("choosing the ticks took over %d Next calls (a walk over the outage)", bound)
			}
			if len(fire) != tc.fired || !missed {
				t.Fatalf("%d ticks fire (missed: %v), want %d", len(fire), missed, tc.fired)
			}
			if latest.After(now) || !s.Next(latest).After(now) || (len(fire) > 0 && !fire[len(fire)-1].Equal(latest)) {
				t.Fatalf("latest due tick %v is not the last tick up to %v", latest, now)
			}
			if !slices.IsSortedFunc(fire, func(a, b time.Time) int { return a.Compare(b) }) {
				t.Fatalf("ticks out of order: %v", fire)
			}
			n = 0
			up := counted.upcoming(from, now, time.Minute)
			if n > 100 {
				t.Fatalf("the next run took %d Next calls", n)
			}
			if up.Before(now.Add(-time.Minute)) || up.After(s.Next(now)) {
				t.Fatalf("next run %v, not within the last minute's ticks or the next", up)
			}
		})
	}
}

// walk is every tick after from up to now, and the first one after: the definition
// of an entry's due ticks, to which walkDue applies the catch-up policy.
func walk(s schedule, from, now time.Time) (ticks []time.Time, after time.Time) {
	t := s.Next(from)
	for ; !t.IsZero() && !t.After(now); t = s.Next(t) {
		ticks = append(ticks, t)
	}
	return ticks, t
}

func walkDue(ticks []time.Time, after, now time.Time, missedAfter time.Duration, catchUp CatchUp, limit int) (fire []time.Time, latest time.Time, upcoming time.Time) {
	var old, recent []time.Time
	for _, t := range ticks {
		if now.Sub(t) > missedAfter {
			old = append(old, t)
		} else {
			recent = append(recent, t)
		}
		latest = t
	}
	upcoming = after
	if len(recent) > 0 {
		upcoming = recent[0]
	}
	keep := map[CatchUp]int{CatchUpSkip: 0, CatchUpLatest: 1, CatchUpAll: limit}[catchUp]
	if len(old) > keep {
		old = old[len(old)-keep:]
	}
	return append(old, recent...), latest, upcoming
}

// TestCatchUpMatchesAWalk: the ticks chosen without walking the whole outage are those
// a walk over it chooses, DST changes included (a walk maps a spring-forward gap's wall
// times after the gap, and fires a repeated hour once).
func TestCatchUpMatchesAWalk(t *testing.T) {
	changes := map[string][]time.Time{ // 2026's DST changes
		"America/New_York":    {time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)},
		"Europe/Berlin":       {time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC)},
		"Australia/Lord_Howe": {time.Date(2026, 4, 4, 15, 0, 0, 0, time.UTC), time.Date(2026, 10, 3, 15, 30, 0, 0, time.UTC)}, // 30 min
		"UTC":                 {time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)},
	}
	specs := []string{"*/20 * * * * *", "* * * * *", "*/10 * * * *", "0 * * * *", "30 2 * * *", "30 1 * * *", "15,45 1-3 * * *", "@every 50s"}
	nows := []time.Duration{-90 * time.Minute, -20 * time.Minute, 0, 10 * time.Minute, 31 * time.Minute,
		61 * time.Minute, 3*time.Hour + 10*time.Minute, 26 * time.Hour}
	outages := []time.Duration{20 * time.Minute, 90 * time.Minute, 30 * time.Hour, 4 * 24 * time.Hour}
	policies := []struct {
		catchUp CatchUp
		limit   int
	}{{CatchUpSkip, 10}, {CatchUpLatest, 10}, {CatchUpAll, 50}}
	checked := 0
	for zone, ts := range changes {
		for _, spec := range specs {
			s := mustSchedule(t, spec, zone)
			for _, change := range ts {
				for _, dn := range nows {
					for _, outage := range outages {
						if (outage > 30*time.Hour && (spec == "* * * * *" || spec == "@every 50s")) || (outage > time.Hour && spec == "*/20 * * * * *") {
							continue // a long reference walk for little more
						}
						now := change.Add(dn).Add(1500 * time.Millisecond)
						from := now.Add(-outage).Add(-700 * time.Millisecond)
						ticks, after := walk(s, from, now)
						for _, missedAfter := range []time.Duration{time.Minute, 45 * time.Minute} {
							for _, p := range policies {
								wantFire, wantLatest, wantUp := walkDue(ticks, after, now, missedAfter, p.catchUp, p.limit)
								fire, latest, _ := s.due(from, now, missedAfter, p.catchUp, p.limit)
								up := s.upcoming(from, now, missedAfter)
								checked++
								if !slices.EqualFunc(fire, wantFire, time.Time.Equal) || !latest.Equal(wantLatest) || !up.Equal(wantUp) {
									t.Fatalf("%s in %s, from %v to %v, missed after %s, %s %d:\n fire %v\n want %v\n latest %v, want %v\n next %v, want %v",
										spec, zone, from.UTC(), now.UTC(), missedAfter, p.catchUp, p.limit, utc(fire), utc(wantFire), latest.UTC(), wantLatest.UTC(), up.UTC(), wantUp.UTC())
								}
							}
						}
					}
				}
			}
		}
	}
	if checked < 4_000 {
		t.Fatalf("only %d cases checked", checked)
	}
}

func utc(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.UTC().Format("01-02 15:04:05")
	}
	return out
}
