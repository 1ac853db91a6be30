package beat

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chronoq/chronoq/job"
)

// FuzzLoadFile: LoadFile reads any beat file without panicking; what it refuses wraps
// ErrInvalidEntry; each entry it returns is valid (it compiles, its args are a valid
// payload, its name is unique) and survives the way a beat stores it (as JSON in
// Redis) unchanged.
func FuzzLoadFile(f *testing.F) {
	for _, s := range []string{
		"",
		"entries: []\n",
		`entries:
  - name: nightly-retrain
    spec: "0 2 * * *"
    time_zone: Europe/Berlin
    task: ml.retrain
    args: {model: ranker, sizes: [1, 2.5, -3], on: true, none: null}
    queue: ml
    priority: 7
    retries: 3
    timeout: 2h
    overlap: skip
    catch_up: all
    catch_up_limit: 100
  - name: heartbeat
    spec: "@every 30s"
    task: ops.ping
    disabled: true
`,
		"entries:\n  - {name: a, spec: '*/5 * * * * *', task: t}\n  - {name: a, spec: '@daily', task: t}\n",
		"entries:\n  - {name: a, spec: 'CRON_TZ=UTC 0 * * * *', task: t}\n",
		"entries:\n  - {name: a, spec: '0 9 * * 1-5', task: t, time_zone: Local}\n",
		"entries:\n  - {name: a, spec: '0 9 * * *', task: t, time_zone: ../../etc/passwd}\n",
		"entries:\n  - {name: a, spec: '@every 1s', task: t, timeout: 90}\n",
		"entries:\n  - {name: a, spec: '@every 1s', task: t, args: !!binary aGVsbG8=}\n",
		"entries:\n  - {name: a, spec: '@every 1s', task: t, args: {1: x, [a]: y}}\n",
		"entries:\n  - {name: a, spec: '@every 1s', task: t, args: 2026-03-01T12:00:00Z}\n",
		"entries:\n  - {name: a, spec: '@every 1s', task: t, args: &x [*x]}\n",
		"entries:\n  - {name: a, spec: '@every 1s', task: t, args: " + strings.Repeat("[", job.MaxPayloadDepth+1) + strings.Repeat("]", job.MaxPayloadDepth+1) + "}\n",
		"entries:\n  - {name: a, spec: '@every 1s', task: t, args: .nan}\n",
		"entries:\n  - {name: a, spec: '0 0 30 2 *', task: t}\n",
		"entries:\n  - {name: a, spec: '1-99999999999 * * * *', task: t}\n",
		"entries:\n  - {name: a, spec: '@every 1s', task: t, colour: red}\n",
		"entries:\n  - name: a\n    spec: '@every 1s'\n    task: t\n    priority: 12\n    retries: -1\n",
		"entries: {a: 1}\n", "entries:\n  - [1, 2]\n", "[1, 2]\n", "a: &a [*a, *a]\n", "entries:\n\t- x\n",
		"entries:\n  - {name: a, spec: '@every 1s', task: t}\n---\nentries: 5\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := LoadFile(strings.NewReader(string(data)))
		if err != nil && !errors.Is(err, ErrInvalidEntry) {
			t.Fatalf("LoadFile(%q): %v does not wrap ErrInvalidEntry", data, err)
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if e.Name == "" || seen[e.Name] {
				t.Fatalf("LoadFile(%q): entry name %q empty or twice", data, e.Name)
			}
			seen[e.Name] = true
			if err := job.ValidPayload(e.Args); err != nil {
				t.Fatalf("LoadFile(%q): entry %q has args % x: %v", data, e.Name, e.Args, err)
			}
			want := e
			if _, err := want.compile(); err != nil {
				t.Fatalf("LoadFile(%q) returns entry %q, which does not compile: %v", data, e.Name, err)
			}
			// as Set stores it and a beat reads it back (Beat.entries)
			stored, err := json.Marshal(e)
			if err != nil {
				t.Fatalf("entry %+v does not encode: %v", e, err)
			}
			var back Entry
			if err := json.Unmarshal(stored, &back); err != nil {
				t.Fatalf("stored entry %s does not decode: %v", stored, err)
			}
			if _, err := back.compile(); err != nil {
				t.Fatalf("stored entry %s does not compile: %v", stored, err)
			}
			if len(want.Args) == 0 {
				want.Args = nil // omitted from the JSON: empty args read back as none
			}
			if !reflect.DeepEqual(back, want) {
				t.Fatalf("entry read back from %s:\n got %+v\nwant %+v", stored, back, want)
			}
		}
	})
}

// FuzzSchedule: any spec and time zone compile or are refused with ErrInvalidEntry,
// without panicking. For one that compiles, Next moves forward, and the ticks a beat
// fires after an outage (due, upcoming) are those a walk over every tick chooses,
// found with work in proportion to the ticks that fire.
func FuzzSchedule(f *testing.F) {
	for _, s := range []struct {
		spec, zone string
	}{
		{"0 2 * * *", "Europe/Berlin"}, {"30 2 * * *", "America/New_York"}, {"*/20 * * * * *", ""},
		{"15,45 1-3 * * *", "Australia/Lord_Howe"}, {"@every 50s", "UTC"}, {"@hourly", "Asia/Kolkata"},
		{"@every 1h30m", ""}, {"0 0 29 2 1", ""}, {"0 0 30 2 *", ""}, {"@every 0s", ""}, {"@every -5s", ""},
		{"CRON_TZ=Asia/Tokyo 0 9 * * *", ""}, {"* * * * * * *", ""}, {"*/0 * * * *", ""}, {"0 9 * * *", "Local"},
		{"59 23 31 12 *", "Pacific/Apia"}, {"0 3 * * 0", "America/Sao_Paulo"}, {"TZ=", ""}, {"@every 2562047h", ""},
	} {
		f.Add(s.spec, s.zone, int64(0), int64(90*60), int64(60), uint8(2), 10)
		f.Add(s.spec, s.zone, int64(6_000_000), int64(26*3600), int64(45*60), uint8(0), 1)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec, zone string, fromSec, outageSec, missedSec int64, policy uint8, limit int) {
		e := Entry{Name: "e", Spec: spec, TimeZone: zone, Task: "t", CatchUp: []CatchUp{CatchUpSkip, CatchUpLatest, CatchUpAll}[policy%3], CatchUpLimit: limit}
		s, err := e.compile()
		if err != nil {
			if !errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("spec %q in %q: %v does not wrap ErrInvalidEntry", spec, zone, err)
			}
			return
		}
		// within a few years of now, outages up to 40 days, a tick missed after 1 s to 2 days
		from := base.Add(time.Duration(fromSec%(4*365*24*3600))*time.Second + 700*time.Millisecond)
		now := from.Add(time.Duration(max(outageSec, -outageSec)%(40*24*3600)) * time.Second).Add(800 * time.Millisecond)
		missedAfter := time.Duration(1+max(missedSec, -missedSec)%(2*24*3600)) * time.Second
		next := s.Next(from)
		if !next.IsZero() && !next.After(from) {
			t.Fatalf("spec %q in %q: Next(%v) = %v, not after it", spec, zone, from, next)
		}
		if n2 := s.Next(next); !next.IsZero() && !n2.IsZero() && !n2.After(next) {
			t.Fatalf("spec %q in %q: Next(%v) = %v, not after it", spec, zone, next, n2)
		}
		calls, bound := 0, 1<<30
		counted := s
		counted.spec = countingSpec{s.spec, &calls, &bound}
		fire, latest, _ := counted.due(from, now, missedAfter, e.CatchUp, e.CatchUpLimit)
		if max := 10*(len(fire)+2) + 300; calls > max {
			t.Fatalf("spec %q in %q, %v to %v: %d Next calls to choose %d ticks (over %d)", spec, zone, from, now, calls, len(fire), max)
		}
		if !slices.IsSortedFunc(fire, func(a, b time.Time) int { return a.Compare(b) }) || len(fire) > 0 && !fire[len(fire)-1].Equal(latest) {
			t.Fatalf("spec %q in %q: fire %v, latest %v", spec, zone, utc(fire), latest.UTC())
		}
		for _, tk := range fire {
			if !tk.After(from) || tk.After(now) {
				t.Fatalf("spec %q in %q: tick %v outside (%v, %v]", spec, zone, tk.UTC(), from.UTC(), now.UTC())
			}
		}
		// the reference: every tick from from, when that walk is short enough
		var ticks []time.Time
		tk := s.Next(from)
		for ; !tk.IsZero() && !tk.After(now); tk = s.Next(tk) {
			if ticks = append(ticks, tk); len(ticks) > 20_000 {
				return
			}
		}
		wantFire, wantLatest, wantUp := walkDue(ticks, tk, now, missedAfter, e.CatchUp, e.CatchUpLimit)
		if recent := countRecent(ticks, now, missedAfter); recent > maxKept { // due fires the latest maxKept of them
			wantFire = append(wantFire[:len(wantFire)-recent], wantFire[len(wantFire)-maxKept:]...)
		}
		up := s.upcoming(from, now, missedAfter)
		if !slices.EqualFunc(fire, wantFire, time.Time.Equal) || !latest.Equal(wantLatest) || !up.Equal(wantUp) {
			t.Fatalf("%s in %q, from %v to %v, missed after %s, %s %d:\n fire %v\n want %v\n latest %v, want %v\n next %v, want %v",
				spec, zone, from.UTC(), now.UTC(), missedAfter, e.CatchUp, e.CatchUpLimit, utc(fire), utc(wantFire),
				latest.UTC(), wantLatest.UTC(), up.UTC(), wantUp.UTC())
		}
	})
}

// countRecent is how many of ticks are not missed at now.
func countRecent(ticks []time.Time, now time.Time, missedAfter time.Duration) int {
	n := 0
	for _, t := range ticks {
		if now.Sub(t) <= missedAfter {
			n++
		}
	}
	return n
}
